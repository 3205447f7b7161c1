"""The user's own segmentation pictures: ``root/images/<name>.<jpg|png|...>`` beside
``root/masks/<name>.png``, or the same pair of folders in ``root/{train,val,test}/``.

A mask is a single-channel PNG (mode ``L`` or ``P``; ``1`` also works) of its image's size whose
raw pixel values are class ids: ``data.classes`` names them in order (index = pixel value) and
255 marks pixels to ignore. A palette PNG is read by its palette index, never by its colours.

Every image needs its mask, and that is checked when the data is set up (a directory listing);
a mask without an image is left out with a warning. The pixels of a mask (its ids, its size)
are checked when it is read, so a bad mask stops the first epoch that reaches it with a message
that names the file. Without ``root/train/images`` the one folder is split into train, val and
test by ``val_fraction`` and ``test_fraction`` with ``split_seed``; without a test split (no
``root/test/``, or ``test_fraction`` 0) the test split is the validation split.

``MaskFileDataset`` and ``image_mask_pairs`` are shared with the VOC segmentation reader.
"""

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS

from cnnlab.data.imagefolder import _DECODE_ERRORS
from cnnlab.data.segmentation import SegmentationDataModule
from cnnlab.data.transforms import IGNORE_INDEX
from cnnlab.errors import UserError

log = logging.getLogger(__name__)

MASK_MODES = ("L", "P", "1")  # single-channel modes whose raw values are the ids


def check_classes(classes: Sequence[str]) -> list[str]:
    """``data.classes`` as a list, refused unless it names 2..255 distinct classes."""
    names = [str(name) for name in classes]
    if not 2 <= len(names) <= IGNORE_INDEX or len(set(names)) != len(names):
        raise UserError(
            f"data.classes={names} must be a list of 2 to {IGNORE_INDEX} distinct class names, "
            f"one per mask pixel value in order (the first is id 0, the background; "
            f"{IGNORE_INDEX} is kept for ignored pixels), e.g. data.classes=[background,cat]."
        )
    return names


def read_image(path: str) -> torch.Tensor:
    """The picture at ``path`` as uint8 (3, H, W) RGB."""
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))  # decodes every pixel: truncation shows here
    except _DECODE_ERRORS as err:
        raise UserError(f"Cannot read the image {path} ({err}). Replace or delete it.") from err
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


def read_mask(path: str, num_classes: int) -> np.ndarray:
    """The class ids of the mask PNG at ``path`` as uint8 (H, W), checked against the classes."""
    try:
        with Image.open(path) as mask:
            mode = mask.mode
            ids = np.asarray(mask, dtype=np.uint8) if mode in MASK_MODES else None
    except _DECODE_ERRORS as err:
        raise UserError(f"Cannot read the mask {path} ({err}). Replace or delete it.") from err
    if ids is None:
        raise UserError(
            f"The mask {path} has PIL mode {mode}; a mask must be a single-channel PNG (mode L "
            "or P) whose pixel values are class ids. Write the ids, not colours, into the mask."
        )
    counts = np.bincount(ids.ravel(), minlength=256)
    counts[IGNORE_INDEX] = 0
    bad = np.flatnonzero(counts[num_classes:]) + num_classes
    if bad.size:
        raise UserError(
            f"The mask {path} holds class ids {bad.tolist()}, but data.classes has only "
            f"{num_classes} classes (ids 0..{num_classes - 1}; {IGNORE_INDEX} is ignored). Set "
            f"data.classes to a list of at least {int(bad.max()) + 1} names, one per id, or "
            "fix the mask."
        )
    return ids


class MaskFileDataset(Dataset):
    """``(image uint8 (3, H, W), mask int64 (H, W))`` from (image path, mask path) pairs, read
    and checked when asked, then passed through ``transform(image, mask)``."""

    def __init__(self, pairs: list[tuple[str, str]], num_classes: int, transform=None) -> None:
        self.pairs, self.num_classes, self.transform = pairs, num_classes, transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        image_path, mask_path = self.pairs[i]
        image = read_image(image_path)
        ids = read_mask(mask_path, self.num_classes)
        if ids.shape != tuple(image.shape[1:]):
            raise UserError(
                f"The mask {mask_path} is {ids.shape[1]}x{ids.shape[0]} pixels but its image "
                f"{image_path} is {image.shape[2]}x{image.shape[1]}. A mask must have its "
                "image's size: fix or remove the pair."
            )
        mask = torch.from_numpy(ids.astype(np.int64))
        return self.transform(image, mask) if self.transform else (image, mask)


def _files(directory: str, extensions: tuple[str, ...]) -> dict[str, str]:
    """{stem: path} of the visible files in ``directory`` with one of ``extensions`` (any case);
    two files with one stem are refused, since either could be meant."""
    found: dict[str, str] = {}
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        stem, ext = os.path.splitext(entry.name)
        if entry.name.startswith(".") or ext.lower() not in extensions or not entry.is_file():
            continue
        if stem in found:
            raise UserError(
                f"{found[stem]} and {entry.path} share the name {stem!r}, so which one a mask "
                "belongs to is unclear. Rename or remove one of them."
            )
        found[stem] = entry.path
    return found


def image_mask_pairs(images_dir: str, masks_dir: str) -> list[tuple[str, str]]:
    """(image, mask) path pairs matched by file stem, sorted by name; an image without its mask
    is a UserError, a mask without its image is left out with a warning."""
    for folder in (images_dir, masks_dir):
        if not os.path.isdir(folder):
            raise UserError(
                f"The folder {folder} does not exist. A mask folder data set needs images/ and "
                "masks/ side by side (data.root, or data.root/train, /val, /test)."
            )
    images = _files(images_dir, IMG_EXTENSIONS)
    masks = _files(masks_dir, (".png",))
    if not images:
        raise UserError(
            f"{images_dir} has no images (looked for {', '.join(IMG_EXTENSIONS)}). Put the "
            f"pictures there and their masks, as <name>.png, in {masks_dir}."
        )
    lacking = [stem for stem in images if stem not in masks]
    if lacking:
        raise UserError(
            f"The image {images[lacking[0]]} has no mask "
            f"{os.path.join(masks_dir, lacking[0] + '.png')} ({len(lacking)} of the "
            f"{len(images)} images in {images_dir} have none). Add the masks, or move those "
            "images out of the folder."
        )
    orphans = sorted(set(masks) - set(images))
    if orphans:
        log.warning(
            "%d masks in %s have no image and are left out: %s",
            len(orphans),
            masks_dir,
            ", ".join(masks[s] for s in orphans[:5]),
        )
    return [(images[stem], masks[stem]) for stem in sorted(images)]


class MaskFolderDataModule(SegmentationDataModule):
    """Segmentation over ``images/`` + ``masks/`` folders; ``classes`` names ids 0..K-1."""

    def __init__(
        self,
        root: str = "data/mask_folder",
        image_size: int | None = 256,
        classes: Sequence[str] = ("background", "foreground"),
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(root=root, image_size=image_size, **kwargs)
        self.classes = check_classes(classes)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    @property
    def class_names(self) -> list[str]:
        return list(self.classes)

    def _pairs(self, *parts: str) -> list[tuple[str, str]]:
        folder = os.path.join(self.root, *parts)
        return image_mask_pairs(os.path.join(folder, "images"), os.path.join(folder, "masks"))

    def _split(self, pairs, fractions: dict[str, float], where: str) -> dict[str, list]:
        """``pairs`` cut at random (``split_seed``) into train and the splits of ``fractions``."""
        counts = {split: round(len(pairs) * f) for split, f in fractions.items()}
        n_train = len(pairs) - sum(counts.values())
        if any(not 0 <= f < 1 for f in fractions.values()) or counts["val"] < 1 or n_train < 1:
            keys = " and ".join(f"data.{split}_fraction={f}" for split, f in fractions.items())
            raise UserError(
                f"{keys} of the {len(pairs)} image/mask pairs in {where} leave an empty train "
                "or validation split. Change the fractions (each in 0..1, together below 1) or "
                "add images."
            )
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(self.split_seed))
        splits, start = {}, 0
        for split, n in counts.items():
            splits[split] = [pairs[i] for i in order[start : start + n].tolist()]
            start += n
        splits["train"] = [pairs[i] for i in order[start:].tolist()]
        return splits

    def _build(self, train_tf, eval_tf):
        if not os.path.isdir(self.root):
            raise UserError(
                f"The mask folder root {self.root} does not exist. Set data.root to a folder "
                "holding images/ and masks/ (or train/, val/ and test/ folders that each hold "
                "images/ and masks/)."
            )
        if os.path.isdir(os.path.join(self.root, "train", "images")):
            splits = {"train": self._pairs("train")}
            for split in ("val", "test"):
                if os.path.isdir(os.path.join(self.root, split)):
                    splits[split] = self._pairs(split)
            if "val" not in splits:
                train_dir = os.path.join(self.root, "train")
                splits.update(self._split(splits["train"], {"val": self.val_fraction}, train_dir))
        else:
            fractions = {"val": self.val_fraction, "test": self.test_fraction}
            splits = self._split(self._pairs(), fractions, self.root)
            if not splits["test"]:
                del splits["test"]
        if "test" not in splits:
            log.info("no test images under %s: the test split is the validation split", self.root)
        k = self.num_classes
        train = MaskFileDataset(splits["train"], k, train_tf)
        val = MaskFileDataset(splits["val"], k, eval_tf)
        test = MaskFileDataset(splits["test"], k, eval_tf) if "test" in splits else val
        log.info(
            "%s: %d training, %d validation, %d test image/mask pairs; classes %s",
            self.root,
            len(train),
            len(val),
            len(test),
            ", ".join(self.classes),
        )
        return train, val, test
