"""Synthetic shapes: circles, squares and triangles on textured backgrounds, drawn from a seed.

``draw_scene(seed, split, index)`` always returns the same picture for the same arguments: an
RGB image plus, for each object, its visible pixels (mask), tight box and class label. The
detection set below uses the boxes; a segmentation set can use the masks of the same scenes.
Objects may overlap, but a new object is only placed where it leaves every earlier one at
least ``MIN_VISIBLE`` of its pixels, and boxes are drawn around the pixels that stay visible.
"""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from cnnlab.data.detection import DetectionDataModule, make_target
from cnnlab.errors import UserError

SHAPE_NAMES = ("circle", "square", "triangle")  # label i + 1; 0 is the background
SPLITS = {"train": 0, "val": 1, "test": 2}
MIN_VISIBLE = 0.7  # share of an object's pixels that later objects may not cover
MIN_SIDE, MAX_SIDE = 12 / 128, 48 / 128  # object size as a share of the image side
COLOURS = np.array(
    [[220, 40, 40], [40, 180, 60], [50, 80, 230], [240, 200, 30], [200, 60, 210], [30, 200, 210],
     [250, 130, 20], [245, 245, 245], [20, 20, 20]],
    dtype=np.float32,
)  # fmt: skip


@dataclass
class Scene:
    """One picture: ``image`` uint8 (H, W, 3); per object ``masks`` bool (N, H, W) of its visible
    pixels, ``boxes`` float32 (N, 4) x1, y1, x2, y2 tight around them, ``labels`` int64 (N,)."""

    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted texture: smooth noise, stripes or a gradient, plus a little pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.integers(3)
    if kind == 0:
        cells = rng.integers(3, 9)
        grid = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
        bg = np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC), np.float32)
    else:
        angle = rng.uniform(0, np.pi)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        wave = np.sin(2 * np.pi * rng.uniform(2, 8) * t) if kind == 1 else t / 1.5
        a, b = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        bg = a + (b - a) * (0.5 + 0.5 * wave)[..., None]
    grey = bg.mean(axis=2, keepdims=True)
    bg = 0.35 * bg + 0.65 * grey  # muted, so the saturated shapes stand out
    bg = 0.6 * bg + 50 + rng.normal(0, 6, bg.shape)
    return bg.astype(np.float32)


def _shape_mask(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """The pixels (tested at their centres) of one shape of class ``label`` somewhere inside."""
    side = rng.uniform(MIN_SIDE, MAX_SIDE) * size
    cx, cy = rng.uniform(side / 2, size - side / 2, 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    x, y = xx - cx, yy - cy
    if label == 1:  # circle of diameter `side`
        return x**2 + y**2 <= (side / 2) ** 2
    if label == 2:  # axis-aligned square
        return (np.abs(x) <= side / 2) & (np.abs(y) <= side / 2)
    angle = rng.uniform(0, 2 * np.pi)  # triangle: three corners on a circle, turned at random
    corners = [
        (np.cos(angle + k * 2 * np.pi / 3) * side / 2, np.sin(angle + k * 2 * np.pi / 3) * side / 2)
        for k in range(3)
    ]
    inside = np.ones_like(x, dtype=bool)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
    return inside


def draw_scene(
    seed: int, split: str, index: int, size: int = 128, min_objects: int = 0, max_objects: int = 6
) -> Scene:
    """The scene ``index`` of ``split`` for this ``seed``: the same arguments, the same scene."""
    rng = np.random.default_rng([seed, SPLITS[split], index])
    image = _background(rng, size)
    wanted = rng.integers(min_objects, max_objects + 1)
    masks: list[np.ndarray] = []  # visible pixels
    whole: list[np.ndarray] = []  # all pixels, before later objects covered some
    labels: list[int] = []
    for _ in range(wanted * 10):  # a few tries per object; a crowded scene may get fewer
        if len(masks) == wanted:
            break
        label = int(rng.integers(1, len(SHAPE_NAMES) + 1))
        mask = _shape_mask(rng, label, size)
        pairs = zip(masks, whole, strict=True)
        if any((m & ~mask).sum() < MIN_VISIBLE * w.sum() for m, w in pairs):
            continue
        colour = COLOURS[rng.integers(len(COLOURS))] + rng.normal(0, 10, 3)
        image[mask] = colour + rng.normal(0, 4, (int(mask.sum()), 3))
        masks = [m & ~mask for m in masks] + [mask]
        whole.append(mask)
        labels.append(label)
    stack = np.stack(masks) if masks else np.zeros((0, size, size), dtype=bool)
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, m in enumerate(masks):
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        boxes[i] = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
    image = np.clip(image, 0, 255).astype(np.uint8)
    return Scene(image, stack, boxes, np.asarray(labels, dtype=np.int64))


class ShapesDetectionDataset(Dataset):
    """Scenes drawn when asked for (nothing is kept): ``(image, target)`` with image_id = index."""

    def __init__(self, split: str, length: int, transform=None, **scene_args) -> None:
        self.split, self.length, self.transform, self.scene_args = (
            split,
            length,
            transform,
            scene_args,
        )

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(index)
        scene = draw_scene(split=self.split, index=index, **self.scene_args)
        image = torch.from_numpy(scene.image).permute(2, 0, 1).contiguous()
        target = make_target(scene.boxes, scene.labels, image_id=index)
        return self.transform(image, target) if self.transform else (image, target)


class SceneSettings:
    """What both shapes datamodules (detection, segmentation) keep: pictures per split, objects
    per picture and the seed the scenes are drawn from."""

    def init_scenes(
        self,
        num_train: int,
        num_val: int,
        num_test: int,
        min_objects: int,
        max_objects: int,
        seed: int,
    ) -> None:
        if not 0 <= min_objects <= max_objects:
            raise UserError(
                f"data.min_objects={min_objects} and data.max_objects={max_objects} must satisfy "
                "0 <= min_objects <= max_objects."
            )
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.min_objects, self.max_objects, self.seed = min_objects, max_objects, seed


class ShapesDetectionDataModule(SceneSettings, DetectionDataModule):
    """Bundled synthetic detection data (3 classes: circle, square, triangle); no files."""

    def __init__(
        self,
        image_size: int = 128,
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

    @property
    def class_names(self) -> list[str]:
        return list(SHAPE_NAMES)

    def _build(self, train_tf, eval_tf):
        scene_args = {
            "seed": self.seed,
            "size": self.image_size or 128,
            "min_objects": self.min_objects,
            "max_objects": self.max_objects,
        }
        return tuple(
            ShapesDetectionDataset(split, self.sizes[split], tf, **scene_args)
            for split, tf in (("train", train_tf), ("val", eval_tf), ("test", eval_tf))
        )
