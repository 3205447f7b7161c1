"""Torchvision-backed datamodules on small files written here in the official formats.

No test touches the network: downloads are switched off or replaced by a failing stub.
"""

import os
from urllib.error import URLError

import pytest
import torch
from torchvision import datasets

from cnnlab.data.torchvision_sets import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)
from cnnlab.errors import UserError

from datafiles import N_TEST, write_cifar, write_mnist


@pytest.mark.parametrize(
    ("module", "folder"), [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")]
)
def test_mnist_family_loads_idx_files(tmp_path, module, folder):
    write_mnist(tmp_path, folder)
    dm = module(root=str(tmp_path), download=False, image_size=32, batch_size=8, val_fraction=0.25)
    dm.prepare_data()
    dm.setup()
    assert (dm.num_classes, dm.in_channels) == (10, 1)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, N_TEST)
    assert set(dm.train_set.indices).isdisjoint(dm.val_set.indices)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    # validation goes through the evaluation transforms: the same image twice is the same tensor
    assert torch.equal(dm.val_set[0][0], dm.val_set[0][0])


def test_split_is_fixed_by_seed(tmp_path):
    write_mnist(tmp_path, "MNIST")

    def val_indices(seed):
        dm = MNISTDataModule(root=str(tmp_path), download=False, split_seed=seed)
        dm.setup()
        return dm.val_set.indices

    assert val_indices(0) == val_indices(0)
    assert val_indices(0) != val_indices(1)


def test_hflip_defaults():
    assert not MNISTDataModule().hflip
    assert FashionMNISTDataModule().hflip and CIFAR10DataModule().hflip


def test_grey_to_rgb(tmp_path):
    write_mnist(tmp_path, "MNIST")
    dm = MNISTDataModule(root=str(tmp_path), download=False, channels=3, image_size=32)
    dm.setup()
    assert dm.in_channels == 3 and dm.test_set[0][0].shape == (3, 32, 32)


@pytest.mark.parametrize(
    ("module", "folder", "a_file"),
    [
        (MNISTDataModule, "MNIST/raw", "train-images-idx3-ubyte"),
        (FashionMNISTDataModule, "FashionMNIST/raw", "t10k-labels-idx1-ubyte"),
        (CIFAR10DataModule, "cifar-10-batches-py", "data_batch_1"),
        (CIFAR100DataModule, "cifar-100-python", "meta"),
    ],
)
def test_absent_files_without_download_name_the_folder(tmp_path, module, folder, a_file):
    dm = module(root=str(tmp_path), download=False)
    for step in (dm.prepare_data, dm.setup):
        with pytest.raises(UserError) as err:
            step()
        message = str(err.value)
        assert os.path.join(str(tmp_path), folder) in message
        assert a_file in message and "download" in message


@pytest.mark.parametrize("module", [MNISTDataModule, CIFAR10DataModule])
def test_failed_download_is_a_user_error(tmp_path, monkeypatch, module):
    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(module.dataset_cls, "download", offline)
    dm = module(root=str(tmp_path), download=True)
    with pytest.raises(UserError, match="download failed") as err:
        dm.prepare_data()
    assert str(tmp_path) in str(err.value)


def test_cifar10_corrupted_files_are_a_user_error(tmp_path):
    # Files we write cannot match the md5 sums torchvision checks, so they count as corrupted.
    write_cifar(tmp_path, "cifar10")
    dm = CIFAR10DataModule(root=str(tmp_path), download=False)
    with pytest.raises(UserError, match="corrupted") as err:
        dm.setup()
    assert "cifar-10-batches-py" in str(err.value)


def test_cifar10_loads_pickled_batches(tmp_path, monkeypatch):
    # torchvision checks each CIFAR file's md5, which no file of our own can pass: the check
    # is replaced by "the file exists" so that our side (splits, transforms) is exercised.
    monkeypatch.setattr(
        datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path)
    )
    write_cifar(tmp_path, "cifar10")
    dm = CIFAR10DataModule(root=str(tmp_path), download=False, batch_size=4)
    dm.setup()
    assert (dm.num_classes, dm.in_channels) == (10, 3)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (36, 4, 8)
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape == (4, 3, 32, 32)


def test_cifar100_names():
    dm = CIFAR100DataModule()
    assert dm.num_classes == 100 and dm.class_names[:2] == ["apple", "aquarium_fish"]


def test_bad_val_fraction():
    with pytest.raises(UserError, match="val_fraction"):
        MNISTDataModule(val_fraction=1.5)
