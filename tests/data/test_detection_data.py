"""The detection batch format, the collate and the transforms shared by every detection set."""

import random

import pytest
import torch

from cnnlab.data.coco import CocoDetectionDataModule
from cnnlab.data.detection import DetectionTransform, collate, make_target
from cnnlab.data.shapes import ShapesDetectionDataModule
from cnnlab.data.voc import VocDetectionDataModule

from datafiles import write_coco, write_voc


def block_image() -> tuple[torch.Tensor, dict]:
    """A 48x64 black image with one white block at x 4..20, y 6..16, and its box."""
    image = torch.zeros(3, 48, 64, dtype=torch.uint8)
    image[:, 6:16, 4:20] = 255
    return image, make_target([[4, 6, 20, 16]], [1], image_id=3)


def test_collate_keeps_lists():
    a = (torch.zeros(3, 10, 12), make_target([[0, 0, 5, 5]], [2], 0))
    b = (torch.zeros(3, 7, 9), make_target([], [], 1))
    images, targets = collate([a, b])
    assert [im.shape for im in images] == [(3, 10, 12), (3, 7, 9)]
    assert [t["image_id"] for t in targets] == [0, 1]
    assert targets[1]["boxes"].shape == (0, 4) and targets[1]["labels"].dtype == torch.int64


def test_eval_transform_scales_image_and_boxes():
    image, target = block_image()
    out, t = DetectionTransform(image_size=24, train=False)(image, target)
    assert out.shape == (3, 24, 32) and out.dtype == torch.float32 and out.max() <= 1
    assert t["boxes"].tolist() == [[2, 3, 10, 8]] and t["labels"].tolist() == [1]
    kept, t = DetectionTransform(image_size=None, train=False)(image, target)
    assert kept.shape == (3, 48, 64) and t["boxes"].tolist() == [[4, 6, 20, 16]]


def test_flip_moves_the_box_with_the_block():
    image, target = block_image()
    transform = DetectionTransform(image_size=None, train=True, hflip=1.0)
    random.seed(0)
    out, t = transform(image, target)
    (x1, y1, x2, y2) = t["boxes"][0].tolist()
    width, height = out.shape[2], out.shape[1]
    sx, sy = width / 64, height / 48
    assert width != 64 and sx == pytest.approx(sy, abs=0.03)  # rescaled, aspect ratio kept
    assert x1 == pytest.approx((64 - 20) * sx) and x2 == pytest.approx((64 - 4) * sx)
    assert y1 == pytest.approx(6 * sy) and y2 == pytest.approx(16 * sy)
    bright = out[0] > 0.5  # the white block's pixels now lie inside the moved box
    rows, cols = bright.nonzero(as_tuple=True)
    assert cols.min() >= x1 - 1 and cols.max() < x2 + 1 and rows.min() >= y1 - 1
    assert rows.max() < y2 + 1


def test_train_transform_jitters_the_scale():
    image, target = block_image()
    transform = DetectionTransform(image_size=40, train=True)
    random.seed(1)
    sides = {transform(image, target)[0].shape[1] for _ in range(20)}
    assert len(sides) > 1 and all(34 <= s <= 46 for s in sides)


def test_num_classes_before_setup(tmp_path):
    write_coco(tmp_path / "coco")
    write_voc(tmp_path / "voc")
    shapes = ShapesDetectionDataModule()
    coco = CocoDetectionDataModule(root=str(tmp_path / "coco"))
    voc = VocDetectionDataModule(root=str(tmp_path / "voc"))
    assert (shapes.num_classes, coco.num_classes, voc.num_classes) == (4, 4, 21)
    for dm in (shapes, coco, voc):
        assert dm.task == "detection" and dm.in_channels == 3 and dm.train_set is None
