"""SVHN on small .mat files written here in the official format; no test touches the network.

The files hold 40 training and 20 test pictures whose pixels tell their digit (``svhn_pixels``),
so a loaded image can be checked against its label, its channel order and its orientation.
"""

import json
import os
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torchvision import datasets

from cnnlab.cli.train import train
from cnnlab.data.svhn import SVHNDataModule
from cnnlab.errors import UserError

from datafiles import svhn_pixels, write_svhn

FILES = ("train_32x32.mat", "test_32x32.mat")


@pytest.fixture
def svhn_root(tmp_path, monkeypatch):
    """A folder with the two .mat files, torchvision's md5 check reduced to "the file exists"
    (no file of our own can match the official sums)."""
    monkeypatch.setattr(
        datasets.svhn, "check_integrity", lambda path, md5=None: os.path.isfile(path)
    )
    root = tmp_path / "svhn"
    write_svhn(root, n_train=40, n_test=20)
    return root


def _pixels(dm: SVHNDataModule, image: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) image back as the (H, W, 3) bytes it was made from."""
    mean = torch.tensor(dm.mean).view(3, 1, 1)
    std = torch.tensor(dm.std).view(3, 1, 1)
    raw = (image * std + mean) * 255
    return raw.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def test_splits_classes_and_labels(svhn_root):
    dm = SVHNDataModule(root=str(svhn_root), download=False, val_fraction=0.25, batch_size=8)
    dm.prepare_data()
    dm.setup()
    assert dm.class_names == [str(d) for d in range(10)]
    assert (dm.num_classes, dm.in_channels) == (10, 3)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 20)
    assert set(dm.train_set.indices).isdisjoint(dm.val_set.indices)
    for i in range(len(dm.test_set)):  # image i shows digit i % 10: 0 is stored as label 10
        image, label = dm.test_set[i]
        assert label == i % 10
        np.testing.assert_array_equal(_pixels(dm, image), svhn_pixels(label))
    for position, index in enumerate(dm.val_set.indices):  # the training file the same way
        image, label = dm.val_set[position]
        assert label == index % 10
        np.testing.assert_array_equal(_pixels(dm, image), svhn_pixels(label))


def test_a_batch(svhn_root):
    dm = SVHNDataModule(root=str(svhn_root), download=False, batch_size=8, in_memory=False)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= int(y.min()) and int(y.max()) <= 9


def test_in_memory_batches_equal_the_ordinary_ones(svhn_root):
    # torchvision holds SVHN as (N, 3, 32, 32), CIFAR as (N, 32, 32, 3): the in-memory path
    # decodes through the dataset's items, so both come out (B, 3, H, W) the right way round
    kwargs = {"root": str(svhn_root), "download": False, "batch_size": 8, "augment": False}
    memory, plain = SVHNDataModule(in_memory=True, **kwargs), SVHNDataModule(**kwargs)
    memory.setup()
    plain.setup()
    assert memory.memory is not None and plain.memory is None
    for loader in ("val_dataloader", "test_dataloader"):  # unshuffled: the same order
        for (x_mem, y_mem), (x, y) in zip(
            getattr(memory, loader)(), getattr(plain, loader)(), strict=True
        ):
            assert x_mem.shape == x.shape and torch.equal(y_mem, y)
            assert (x_mem - x).abs().max() <= 1e-6
    x, y = next(iter(memory.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and y.dtype == torch.int64


def test_no_flips_for_digits():
    assert not SVHNDataModule().hflip


def test_a_class_subset_reads_the_labels(svhn_root):
    dm = SVHNDataModule(root=str(svhn_root), download=False, classes=["7", "0"])
    dm.setup()
    assert dm.class_names == ["7", "0"]
    labels = sorted(int(dm.test_set[i][1]) for i in range(len(dm.test_set)))
    assert labels == [0, 0, 1, 1]  # two 7s and two 0s among the 20 test pictures


def test_absent_files_without_download_name_the_files_and_folder(tmp_path):
    dm = SVHNDataModule(root=str(tmp_path), download=False)
    for step in (dm.prepare_data, dm.setup):
        with pytest.raises(UserError) as err:
            step()
        message = str(err.value)
        assert f"Expected the folder {tmp_path} holding the files {', '.join(FILES)}" in message
        assert "ufldl.stanford.edu/housenumbers" in message
        assert "data.download=false" in message and "data.root" in message


def test_failed_download_is_a_user_error(tmp_path, monkeypatch):
    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(datasets.SVHN, "download", offline)
    dm = SVHNDataModule(root=str(tmp_path), download=True)
    with pytest.raises(UserError, match="download failed") as err:
        dm.prepare_data()
    assert str(tmp_path) in str(err.value) and FILES[0] in str(err.value)


def test_corrupted_files_are_a_user_error(tmp_path):
    write_svhn(tmp_path)  # the real md5 check: our files count as corrupted
    dm = SVHNDataModule(root=str(tmp_path), download=False)
    with pytest.raises(UserError, match="corrupted") as err:
        dm.setup()
    assert FILES[0] in str(err.value)


def test_one_epoch_through_cnnlab_train(make_cfg, svhn_root, tmp_path):
    overrides = [
        "data=svhn",
        f"data.root={svhn_root}",
        "data.download=false",
        "data.batch_size=8",
        "data.num_workers=0",
        "model=lenet",
        "logger=none",
        "trainer.max_epochs=1",
    ]
    metrics = train(make_cfg(overrides, run_dir=tmp_path / "run"))
    assert 0.0 <= metrics["test/acc"] <= 1.0
    with open(tmp_path / "run" / "metrics.json") as f:
        assert "test/acc" in json.load(f)
