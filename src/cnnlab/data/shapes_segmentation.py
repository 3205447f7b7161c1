"""Synthetic shapes for segmentation: the scenes of ``cnnlab.data.shapes`` as class masks.

Each pixel holds the class of the object seen there (1 circle, 2 square, 3 triangle) or 0 for
the background; the set has no ignored pixels. Scenes are drawn when asked, from the seed.
"""

import numpy as np
import torch
from torch.utils.data import Dataset

from cnnlab.data.segmentation import SegmentationDataModule
from cnnlab.data.shapes import SHAPE_NAMES, SceneSettings, draw_scene


def class_mask(masks: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    """One (size, size) int64 map from per-object visible-pixel masks (they do not overlap)."""
    out = np.zeros((size, size), dtype=np.int64)
    for mask, label in zip(masks, labels, strict=True):
        out[mask] = label
    return out


class ShapesSegmentationDataset(Dataset):
    """``(image, mask)`` for scene ``index`` of ``split``; nothing is kept in memory."""

    def __init__(self, split: str, length: int, transform=None, **scene_args) -> None:
        self.split, self.length, self.transform = split, length, transform
        self.scene_args = scene_args

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(index)
        scene = draw_scene(split=self.split, index=index, **self.scene_args)
        image = torch.from_numpy(scene.image).permute(2, 0, 1).contiguous()
        size = scene.image.shape[0]
        mask = torch.from_numpy(class_mask(scene.masks, scene.labels, size))
        return self.transform(image, mask) if self.transform else (image, mask)


class ShapesSegmentationDataModule(SceneSettings, SegmentationDataModule):
    """Bundled synthetic segmentation data: background, circle, square, triangle; no files.

    Pictures are drawn ``draw_size`` pixels square, then resized with their masks to
    ``image_size`` (null: kept as drawn).
    """

    def __init__(
        self,
        image_size: int | None = 128,
        draw_size: int = 128,
        num_train: int = 400,
        num_val: int = 100,
        num_test: int = 100,
        min_objects: int = 0,
        max_objects: int = 6,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(image_size=image_size, **kwargs)
        self.init_scenes(num_train, num_val, num_test, min_objects, max_objects, seed)
        self.draw_size = draw_size

    @property
    def class_names(self) -> list[str]:
        return ["background", *SHAPE_NAMES]

    def _build(self, train_tf, eval_tf):
        scene_args = {
            "seed": self.seed,
            "size": self.draw_size,
            "min_objects": self.min_objects,
            "max_objects": self.max_objects,
        }
        return tuple(
            ShapesSegmentationDataset(split, self.sizes[split], tf, **scene_args)
            for split, tf in (("train", train_tf), ("val", eval_tf), ("test", eval_tf))
        )
