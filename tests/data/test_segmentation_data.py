"""Segmentation data: the shapes set's masks, the joint transforms and the batch format."""

import numpy as np
import torch

from cnnlab.data.shapes import draw_scene
from cnnlab.data.shapes_segmentation import ShapesSegmentationDataModule, class_mask
from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, SegmentationTransform


def small_dm(**kwargs) -> ShapesSegmentationDataModule:
    args = {"num_train": 4, "num_val": 2, "num_test": 2, "batch_size": 2, "min_objects": 2}
    dm = ShapesSegmentationDataModule(**{**args, **kwargs})
    dm.setup("fit")
    return dm


def test_names_and_sizes_come_before_setup():
    dm = ShapesSegmentationDataModule()
    assert dm.task == "segmentation"
    assert dm.class_names == ["background", "circle", "square", "triangle"]
    assert dm.num_classes == 4 and dm.in_channels == 3 and dm.image_size == 128


def test_mask_matches_the_scene():
    scene = draw_scene(seed=0, split="train", index=3, size=64, min_objects=3)
    mask = class_mask(scene.masks, scene.labels, 64)
    for m, label in zip(scene.masks, scene.labels, strict=True):
        assert (mask[m] == label).all()
    assert (mask[~scene.masks.any(axis=0)] == 0).all()


def test_batch_format():
    dm = small_dm(image_size=64, draw_size=64)
    images, masks = next(iter(dm.val_dataloader()))
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.float32
    assert masks.shape == (2, 64, 64) and masks.dtype == torch.int64
    assert set(masks.unique().tolist()) <= {0, 1, 2, 3}
    assert len(masks.unique()) > 1
    assert images.min() < -1.0  # normalised, not in 0..1


def test_eval_items_are_deterministic_and_normalised_with_imagenet_stats():
    dm = small_dm(image_size=32, draw_size=32)
    (a_img, a_mask), (b_img, b_mask) = dm.test_set[1], dm.test_set[1]
    assert torch.equal(a_img, b_img) and torch.equal(a_mask, b_mask)
    scene = draw_scene(seed=0, split="test", index=1, size=32, min_objects=2)
    raw = torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255
    mean, std = (
        torch.tensor(IMAGENET_MEAN)[:, None, None],
        torch.tensor(IMAGENET_STD)[:, None, None],
    )
    assert torch.allclose(a_img, (raw - mean) / std, atol=1e-5)


def test_resize_keeps_mask_ids_nearest():
    image = torch.zeros(3, 10, 10, dtype=torch.uint8)
    mask = torch.zeros(10, 10, dtype=torch.int64)
    mask[:, 5:] = 3
    mask[0, 0] = 255
    out_img, out_mask = SegmentationTransform(image_size=25, train=False)(image, mask)
    assert out_img.shape == (3, 25, 25) and out_mask.shape == (25, 25)
    assert set(out_mask.unique().tolist()) == {0, 3, 255}  # no blended ids
    assert out_mask.dtype == torch.int64


def test_train_flip_moves_image_and_mask_together():
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    image[:, :, :2] = 255
    mask = torch.zeros(8, 8, dtype=torch.int64)
    mask[:, :2] = 1
    tf = SegmentationTransform(image_size=None, train=True, hflip=1.0)
    out_img, out_mask = tf(image, mask)
    bright = out_img[0] > 0
    assert torch.equal(bright, out_mask == 1)
    assert out_mask[:, -2:].eq(1).all()


def test_other_seed_other_pictures():
    a = small_dm(image_size=32, draw_size=32).val_set[0][0]
    b = small_dm(image_size=32, draw_size=32, seed=1).val_set[0][0]
    assert not np.allclose(a.numpy(), b.numpy())
