"""The synthetic shapes: deterministic, tight boxes, empty pictures, the batch format."""

import numpy as np
import pytest
import torch

from cnnlab.data.shapes import SHAPE_NAMES, ShapesDetectionDataModule, draw_scene
from cnnlab.errors import UserError


def test_same_index_same_scene_and_seeds_differ():
    a, b = draw_scene(0, "train", 5), draw_scene(0, "train", 5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.image, draw_scene(1, "train", 5).image)
    assert not np.array_equal(a.image, draw_scene(0, "val", 5).image)


def test_boxes_are_tight_around_visible_pixels():
    counts = []
    for index in range(30):
        scene = draw_scene(3, "train", index, size=128)
        counts.append(len(scene.labels))
        assert scene.masks.shape == (len(scene.labels), 128, 128)
        assert set(scene.labels.tolist()) <= {1, 2, 3}
        for mask, (x1, y1, x2, y2) in zip(scene.masks, scene.boxes.astype(int), strict=True):
            rows, cols = np.nonzero(mask)
            assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
            assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x1, y1, x2, y2)
            assert 10 <= max(x2 - x1, y2 - y1) <= 49  # objects 12-48 px, partly covered
        if len(scene.masks) > 1:
            assert not (scene.masks.sum(axis=0) > 1).any()  # visible pixels belong to one
    assert 0 in counts and max(counts) >= 5


def test_datamodule_batches_and_determinism():
    dm = ShapesDetectionDataModule(num_train=6, num_val=4, num_test=4, batch_size=3)
    assert dm.class_names == list(SHAPE_NAMES) and dm.num_classes == 4
    dm.setup()
    images, targets = next(iter(dm.val_dataloader()))
    assert len(images) == 3 and images[0].shape == (3, 128, 128)
    assert images[0].dtype == torch.float32 and 0 <= images[0].min() and images[0].max() <= 1
    assert [t["image_id"] for t in targets] == [0, 1, 2]
    for t in targets:
        assert t["boxes"].dtype == torch.float32 and t["boxes"].shape[1] == 4
        assert t["labels"].dtype == torch.int64 and len(t["labels"]) == len(t["boxes"])
    again, targets2 = dm.val_set[1]
    assert torch.equal(again, images[1]) and torch.equal(targets2["boxes"], targets[1]["boxes"])
    train_images, _ = next(iter(dm.train_dataloader()))
    assert all(im.shape[0] == 3 for im in train_images)


def test_bad_object_counts_are_refused():
    with pytest.raises(UserError, match="min_objects"):
        ShapesDetectionDataModule(min_objects=4, max_objects=2)
