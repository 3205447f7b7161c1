"""Segmentation data on small files written by the test: VOC palette PNGs and mask folders."""

import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.train import train
from cnnlab.data.mask_folder import MaskFolderDataModule
from cnnlab.data.palette import voc_palette
from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.data.voc_segmentation import VocSegmentationDataModule
from cnnlab.errors import UserError

from datafiles import SEG_LEVEL, SEG_SIZE, seg_mask, write_mask_folder, write_voc_segmentation

W, H = SEG_SIZE


def voc(root, **kwargs) -> VocSegmentationDataModule:
    kwargs = {"image_size": None, "batch_size": 2, "augment": False, **kwargs}
    dm = VocSegmentationDataModule(root=str(root), **kwargs)
    dm.setup()
    return dm


def folder(root, **kwargs) -> MaskFolderDataModule:
    kwargs = {"image_size": None, "batch_size": 2, "augment": False, **kwargs}
    kwargs.setdefault("classes", ["background", "a", "b"])
    dm = MaskFolderDataModule(root=str(root), **kwargs)
    dm.setup()
    return dm


def unnormalise(image: torch.Tensor) -> torch.Tensor:
    """A normalised float image back to 0..255."""
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (image * std + mean) * 255


def test_voc_palette_is_the_standard_one():
    palette = voc_palette()
    assert len(palette) == 768 and all(0 <= v <= 255 for v in palette)
    assert palette[:6] == [0, 0, 0, 128, 0, 0]  # background, aeroplane
    assert palette[15 * 3 : 16 * 3] == [192, 128, 128]  # person
    assert palette[255 * 3 :] == [224, 224, 192]  # the ignored border
    assert voc_palette(21) == palette[:63]


def test_voc_items_are_palette_indices_and_test_falls_back_to_val(tmp_path, caplog):
    masks = write_voc_segmentation(tmp_path)
    with caplog.at_level(logging.INFO, logger="cnnlab.data.voc_segmentation"):
        dm = voc(tmp_path)
    assert "test split is the validation split" in caplog.text
    assert dm.num_classes == 21 and dm.class_names[:2] == ["background", "aeroplane"]
    assert dm.test_set is dm.val_set and len(dm.train_set) == 3
    # untransformed items: the raw format a subclass gives the base transform
    raw = VocSegmentationDataModule(root=str(tmp_path), image_size=None)
    raw.setup()
    raw.train_set.transform = None
    image, mask = raw.train_set[0]
    assert image.dtype == torch.uint8 and image.shape == (3, H, W)
    assert mask.dtype == torch.int64 and mask.shape == (H, W)
    assert np.array_equal(mask.numpy(), masks["train_0"])  # the index, not the colour
    assert set(mask.unique().tolist()) == {0, 15, 255}
    images, batch_masks = next(iter(dm.val_dataloader()))
    assert images.shape == (2, 3, H, W) and images.dtype == torch.float32
    assert batch_masks.shape == (2, H, W) and batch_masks.dtype == torch.int64
    assert set(batch_masks[1].unique().tolist()) == {0, 1, 255}


def test_voc_test_split_and_custom_classes(tmp_path):
    write_voc_segmentation(tmp_path, splits=("train", "val", "test"), ids=(1, 2))
    dm = voc(tmp_path, classes=["background", "aeroplane", "bicycle"])
    assert dm.test_set is not dm.val_set and dm.num_classes == 3
    assert set(dm.test_set[1][1].unique().tolist()) == {0, 2, 255}


def test_voc_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        voc(tmp_path / "nowhere")
    with pytest.raises(UserError, match="must start with background"):
        VocSegmentationDataModule(classes=["cat", "background"])
    write_voc_segmentation(tmp_path)  # ids 15 and 1
    with pytest.raises(UserError, match="has no mask") as err:
        (tmp_path / "SegmentationClass" / "val_2.png").unlink()
        voc(tmp_path)
    assert "val_2.png" in str(err.value) and "val.txt" in str(err.value)
    with pytest.raises(UserError, match=r"JPEGImages.train_1\.jpg"):
        (tmp_path / "JPEGImages" / "train_1.jpg").unlink()
        voc(tmp_path)
    write_voc_segmentation(tmp_path)
    images = tmp_path / "JPEGImages"
    (images / "test_0.jpg").write_bytes((images / "train_0.jpg").read_bytes())
    (tmp_path / "ImageSets" / "Segmentation" / "test.txt").write_text("test_0\n")
    with pytest.raises(UserError, match="VOC's own test images come without masks"):
        voc(tmp_path)
    (tmp_path / "ImageSets" / "Segmentation" / "test.txt").unlink()
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").unlink()
    with pytest.raises(UserError, match=r"Segmentation.val\.txt does not exist"):
        voc(tmp_path)
    write_voc_segmentation(tmp_path)
    dm = voc(tmp_path, classes=["background", "aeroplane", "bicycle"])  # setup only lists files
    with pytest.raises(UserError, match="class ids") as err:
        dm.train_set[0]  # id 15 with 3 classes
    message = str(err.value)
    assert "train_0.png" in message and "[15]" in message and "3 classes" in message
    assert "data.classes" in message and "16 names" in message
    assert dm.train_set[1][1].max() == 255  # id 1 fits


def test_mask_folder_split_by_fractions_is_deterministic(tmp_path, caplog):
    written = write_mask_folder(tmp_path, n_images=10)
    dm = folder(tmp_path, val_fraction=0.2, test_fraction=0.1)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (7, 2, 1)
    again = folder(tmp_path, val_fraction=0.2, test_fraction=0.1)
    assert dm.val_set.pairs == again.val_set.pairs
    other = folder(tmp_path, val_fraction=0.2, test_fraction=0.1, split_seed=1)
    assert dm.val_set.pairs != other.val_set.pairs
    splits = [{p for p, _ in s.pairs} for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert set.union(*splits) == set(written) and sum(map(len, splits)) == 10
    dm.val_set.transform = None
    image, mask = dm.val_set[0]
    assert image.dtype == torch.uint8 and image.shape == (3, H, W)
    assert mask.dtype == torch.int64
    assert np.array_equal(mask.numpy(), written[dm.val_set.pairs[0][0]])
    with caplog.at_level(logging.INFO, logger="cnnlab.data.mask_folder"):
        no_test = folder(tmp_path, test_fraction=0)
    assert no_test.test_set is no_test.val_set
    assert "test split is the validation split" in caplog.text


def test_mask_folder_split_folders(tmp_path, caplog):
    write_mask_folder(tmp_path, n_images=4, splits=("train", "val"))
    (tmp_path / "train" / "masks" / "099.png").write_bytes(
        (tmp_path / "train" / "masks" / "000.png").read_bytes()
    )
    with caplog.at_level(logging.INFO, logger="cnnlab.data.mask_folder"):
        dm = folder(tmp_path)
    assert "1 masks in" in caplog.text and "099.png" in caplog.text  # left out, with a warning
    assert len(dm.train_set) == 4 and dm.test_set is dm.val_set
    assert all(os.path.join("val", "images") in p for p, _ in dm.val_set.pairs)
    write_mask_folder(tmp_path, n_images=2, splits=("test",))
    assert len(folder(tmp_path).test_set) == 2


def test_mask_folder_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        folder(tmp_path / "nowhere")
    with pytest.raises(UserError, match="distinct"):
        MaskFolderDataModule(classes=["background"])
    write_mask_folder(tmp_path, n_images=6, num_classes=4)
    with pytest.raises(UserError, match="empty train or validation") as err:
        folder(tmp_path, val_fraction=0.01)
    assert "data.val_fraction=0.01" in str(err.value)
    (tmp_path / "masks" / "004.png").unlink()
    with pytest.raises(UserError, match=r"images.004\.png has no mask .*masks.004\.png"):
        folder(tmp_path)
    Image.new("L", (W, H)).save(tmp_path / "masks" / "004.png")
    dm = folder(tmp_path, val_fraction=0.5, test_fraction=0)
    dm.train_set.pairs = [
        (str(tmp_path / "images" / "002.png"), str(tmp_path / "masks" / "002.png"))
    ]
    with pytest.raises(UserError, match=r"002\.png holds class ids \[3\].*3 classes"):
        dm.train_set[0]
    Image.new("L", (W + 1, H)).save(tmp_path / "masks" / "002.png")
    with pytest.raises(UserError, match=r"002\.png is 41x30 pixels but its image"):
        dm.train_set[0]
    Image.new("RGB", (W, H)).save(tmp_path / "masks" / "002.png")
    with pytest.raises(UserError, match="mode RGB"):
        dm.train_set[0]
    (tmp_path / "masks" / "002.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"Cannot read the mask .*002\.png"):
        dm.train_set[0]


def test_resize_keeps_mask_ids_nearest(tmp_path):
    write_voc_segmentation(tmp_path)
    dm = voc(tmp_path, image_size=57)
    image, mask = dm.val_set[0]
    assert image.shape == (3, 57, 57) and mask.shape == (57, 57)
    assert set(mask.unique().tolist()) == {0, 15, 255}  # no blended ids


def test_joint_flip_moves_image_and_mask_together(tmp_path):
    write_mask_folder(tmp_path, n_images=4, splits=("train", "val"))
    dm = folder(tmp_path, augment=True)
    torch.manual_seed(0)
    flipped = 0
    for _ in range(6):
        for i in range(len(dm.train_set)):
            image, mask = dm.train_set[i]
            grey = unnormalise(image)[0].round().long()
            expected = torch.where(mask == 255, 255, mask * SEG_LEVEL)
            assert torch.equal(grey, expected)  # the mask still is the function of the pixels
            flipped += int(mask[H // 2, -3] != 0)  # the block sits at the left unless flipped
    assert 0 < flipped < 24


@pytest.mark.parametrize("which", ["voc_segmentation", "mask_folder"])
def test_one_epoch_through_cnnlab_train(make_cfg, tmp_path, which):
    root = tmp_path / which
    if which == "voc_segmentation":
        write_voc_segmentation(root, n_images=2)
    else:
        write_mask_folder(root, n_images=6)
    overrides = [
        f"data={which}",
        f"data.root={root}",
        "data.image_size=32",
        "data.batch_size=2",
        "data.num_workers=0",
        "model=fcn32s",
        "model/backbone=resnet20",
        "logger=none",
        "trainer.max_epochs=1",
    ]
    if which == "mask_folder":
        overrides.append("data.classes=[background,a,b]")
    metrics = train(make_cfg(overrides, run_dir=tmp_path / "run"))
    assert {"train/loss", "val/miou", "test/miou", "test/pixel_acc"} <= set(metrics)
    assert 0 <= metrics["test/miou"] <= 1


def test_seg_mask_helper_is_asymmetric():
    mask = seg_mask(0, 1)
    assert not np.array_equal(mask, mask[:, ::-1]) and mask[H // 2, 3] == 1
