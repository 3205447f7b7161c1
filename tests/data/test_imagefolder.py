"""ImageFolderDataModule on small PNG/JPEG trees generated with PIL in a temporary folder."""

import logging
import os

import pytest
import torch

from cnnlab.data.imagefolder import ImageFolderDataModule
from cnnlab.errors import UserError

from datafiles import CLASSES, make_tree


def module(root, **kwargs) -> ImageFolderDataModule:
    kwargs = {"image_size": 24, "batch_size": 4, **kwargs}
    return ImageFolderDataModule(root=str(root), **kwargs)


def test_train_val_test_folders(tmp_path):
    make_tree(tmp_path)
    dm = module(tmp_path)
    dm.setup()
    assert dm.class_names == list(CLASSES) and (dm.num_classes, dm.in_channels) == (3, 3)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (12, 12, 12)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 24, 24) and x.dtype == torch.float32
    assert set(y.tolist()) <= {0, 1, 2}


def test_without_val_splits_train_and_test_falls_back_to_val(tmp_path, caplog):
    make_tree(tmp_path, splits=("train",), per_class=10)
    dm = module(tmp_path, val_fraction=0.2)
    with caplog.at_level(logging.INFO, logger="cnnlab.data.imagefolder"):
        dm.setup()
    assert (len(dm.train_set), len(dm.val_set)) == (24, 6)
    assert set(dm.train_set.indices).isdisjoint(dm.val_set.indices)
    assert dm.test_set is dm.val_set
    assert "test split is the validation split" in caplog.text


def test_missing_root_and_train_name_the_path(tmp_path):
    with pytest.raises(UserError, match=str(tmp_path / "nowhere")):
        module(tmp_path / "nowhere").setup()
    (tmp_path / "val").mkdir()
    with pytest.raises(UserError, match=os.path.join(str(tmp_path), "train")):
        _ = module(tmp_path).num_classes


def test_empty_class_folder_is_named(tmp_path):
    make_tree(tmp_path, splits=("train",))
    empty = tmp_path / "train" / "emu"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match="has no images") as err:
        module(tmp_path).setup()
    assert str(empty) in str(err.value)


def test_val_classes_must_match_train(tmp_path):
    make_tree(tmp_path, splits=("train", "val"))
    (tmp_path / "val" / "dog").rename(tmp_path / "val" / "wolf")
    with pytest.raises(UserError, match="differ") as err:
        module(tmp_path).setup()
    assert "wolf" in str(err.value) and "dog" in str(err.value)


def test_corrupt_image_names_the_file(tmp_path):
    make_tree(tmp_path)
    bad = tmp_path / "test" / "cat" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    dm = module(tmp_path)
    dm.setup()
    index = [path for path, _ in dm.test_set.samples].index(str(bad))
    with pytest.raises(UserError, match="skip_corrupt") as err:
        dm.test_set[index]
    assert str(bad) in str(err.value)


def test_skip_corrupt_counts_and_logs(tmp_path, caplog):
    make_tree(tmp_path)
    (tmp_path / "train" / "cat" / "junk.png").write_bytes(b"\x89PNG not really")
    good = tmp_path / "val" / "dog" / "0.png"
    (tmp_path / "val" / "dog" / "cut.png").write_bytes(good.read_bytes()[:60])  # truncated
    dm = module(tmp_path, skip_corrupt=True)
    with caplog.at_level(logging.WARNING, logger="cnnlab.data.imagefolder"):
        dm.setup()
    assert dm.skipped == 2
    assert (len(dm.train_set), len(dm.val_set)) == (12, 12)
    assert "skipped 2 unreadable images" in caplog.text and "junk.png" in caplog.text
    assert len(list(dm.val_dataloader())) == 3  # every remaining image reads
