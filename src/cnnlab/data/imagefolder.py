"""The user's own pictures in class folders: ``root/train/<class>/*``, ``root/val``, ``root/test``.

Class names are the folder names under ``root/train`` (sorted, hidden folders ignored). Without
``root/val`` a fixed-seed share of train becomes validation; without ``root/test`` the test
split is the validation split. Every image is converted to RGB when read, so grey, palette and
RGBA files can sit side by side. Files without an image extension (notes.txt) are left out with
a warning that names them; a file with an image extension that PIL cannot read stops the run
naming it, unless ``skip_corrupt``.

With ``faces``, every photo of every split stands in for its largest face, aligned by the eyes
and cropped once into ``faces_cache_dir`` (``cnnlab.data.face_crops``); photos without a face
are left out with one warning, and the rest of the pipeline reads the crops.
"""

import logging
import os
from collections.abc import Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

from cnnlab.data.classification import ClassificationDataModule
from cnnlab.data.face_crops import CropCounts, face_crops
from cnnlab.data.faces import FaceSettings
from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.errors import UserError

log = logging.getLogger(__name__)

# What a broken file can raise from PIL: unknown format, truncated data, bad header fields.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def load_rgb(path: str) -> Image.Image:
    """Read and fully decode one image as RGB; a file PIL cannot read is a UserError."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")  # convert() decodes every pixel, so truncation shows here
    except _DECODE_ERRORS as err:
        raise UserError(
            f"Cannot read the image {path} ({err}). Replace or delete the file, or set "
            "data.skip_corrupt=true to leave out every unreadable image (they are counted once "
            "when the data is set up)."
        ) from err


class ImageListDataset(Dataset):
    """(path, class index) pairs read with ``load_rgb`` and passed through ``transform``."""

    def __init__(self, samples: list[tuple[str, int]], transform=None) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, target = self.samples[i]
        image = load_rgb(path)
        return (self.transform(image) if self.transform else image), target


def class_folders(directory: str) -> list[str]:
    """Sorted names of the sub-folders of ``directory``, leaving out hidden ones (.ipynb_...)."""
    return sorted(
        e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith(".")
    )


def warn_not_images(directory: str, classes: list[str]) -> None:
    """Log the files in the class folders that are left out for their extension (notes.txt,
    .csv, ...); hidden files (.DS_Store) are left out silently."""
    others = [
        os.path.join(folder, name)
        for cls in classes
        for folder, _, names in sorted(os.walk(os.path.join(directory, cls), followlinks=True))
        for name in sorted(names)
        if not name.startswith(".") and not name.lower().endswith(IMG_EXTENSIONS)
    ]
    if others:
        log.warning(
            "left out %d file(s) that are not images by their extension (%s): %s%s. Move "
            "them out of data.root to silence this warning.",
            len(others),
            ", ".join(IMG_EXTENSIONS),
            ", ".join(others[:5]),
            ", ..." if len(others) > 5 else "",
        )


class ImageFolderDataModule(ClassificationDataModule):
    """Classification over ``root/{train,val,test}/<class>/<image>`` folders."""

    native_channels = 3
    native_size = None  # photos come in many sizes: every one is resized to image_size

    def __init__(
        self,
        root: str = "data/imagefolder",
        image_size: int = 224,
        hflip: bool | None = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        val_fraction: float = 0.1,
        skip_corrupt: bool = False,
        faces: bool = False,
        face_cascade: str = FaceSettings.cascade,
        face_scale_factor: float = FaceSettings.scale_factor,
        face_min_neighbors: int = FaceSettings.min_neighbors,
        face_min_size: int = FaceSettings.min_size,
        face_margin: float = FaceSettings.margin,
        face_align: bool = FaceSettings.align,
        faces_cache_dir: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root=root, image_size=image_size, hflip=hflip, **kwargs)
        self.mean, self.std = tuple(mean), tuple(std)
        self.val_fraction = val_fraction
        self.skip_corrupt = skip_corrupt
        self.skipped = 0
        self.faces = faces
        self.face_settings = FaceSettings.from_keys(
            {
                "face_cascade": face_cascade,
                "face_scale_factor": face_scale_factor,
                "face_min_neighbors": face_min_neighbors,
                "face_min_size": face_min_size,
                "face_margin": face_margin,
                "face_align": face_align,
            }
        )
        self.faces_cache_dir = faces_cache_dir or os.path.join(root, ".faces_cache")
        self._classes: list[str] | None = None
        self._splits: dict[str, list[tuple[str, int]]] | None = None

    def split_dir(self, split: str) -> str:
        return os.path.join(self.root, split)

    @property
    def all_class_names(self) -> list[str]:
        if self._classes is None:
            train_dir = self.split_dir("train")
            if not os.path.isdir(self.root):
                raise UserError(
                    f"The image folder root {self.root} does not exist. Set data.root to a folder "
                    "holding train/<class>/<images> (and optionally val/ and test/)."
                )
            if not os.path.isdir(train_dir):
                raise UserError(
                    f"{train_dir} does not exist. data.root={self.root} must hold a train/ folder "
                    "with one sub-folder of images per class (and optionally val/ and test/)."
                )
            self._classes = class_folders(train_dir)
            if not self._classes:
                raise UserError(
                    f"{train_dir} has no class folders. Put the images of each class in their "
                    f"own folder, e.g. {os.path.join(train_dir, 'cat', '001.jpg')}."
                )
        return self._classes

    def _samples(self, split: str) -> list[tuple[str, int]]:
        """The images of one split, after checking its classes match train's and none is empty."""
        directory, classes = self.split_dir(split), self.all_class_names
        found = class_folders(directory)
        if found != classes:
            missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
            raise UserError(
                f"The class folders of {directory} differ from those of "
                f"{self.split_dir('train')}: missing {missing or 'none'}, extra "
                f"{extra or 'none'}. Every split needs the same class folders."
            )
        index = {name: i for i, name in enumerate(classes)}
        samples = make_dataset(directory, index, extensions=IMG_EXTENSIONS, allow_empty=True)
        empty = sorted(set(range(len(classes))) - {target for _, target in samples})
        if empty:
            raise UserError(
                f"The class folder {os.path.join(directory, classes[empty[0]])} (under "
                f"data.root={self.root}) has no images (looked for {', '.join(IMG_EXTENSIONS)})."
                " Add images to it or remove the folder from every split."
            )
        warn_not_images(directory, classes)
        return samples

    def _drop_unreadable(self, splits: dict[str, list]) -> dict[str, list]:
        """Decode every image once and leave out those PIL cannot read; log how many."""
        bad: list[str] = []
        kept = {}
        for split, samples in splits.items():
            kept[split] = []
            for path, target in samples:
                try:
                    load_rgb(path)
                except UserError:
                    bad.append(path)
                else:
                    kept[split].append((path, target))
        self._count_skipped(bad)
        return kept

    def _count_skipped(self, bad: list[str]) -> None:
        self.skipped = len(bad)
        if bad:
            log.warning("skipped %d unreadable images: %s", len(bad), ", ".join(bad[:5]))

    def _read_photo(self, path: str) -> Image.Image | None:
        """The photo as RGB; None for an unreadable one with ``skip_corrupt`` (else it raises)."""
        try:
            return load_rgb(path)
        except UserError:
            if self.skip_corrupt:
                return None
            raise

    def _face_splits(self, splits: dict[str, list]) -> dict[str, list]:
        """Every split's photos replaced by their face crops (``face_crops``); photos without a
        face left out with one warning; a class left without training images is an error."""
        counts = CropCounts()
        kept = {
            split: face_crops(
                samples, self.face_settings, self.faces_cache_dir, self._read_photo, counts
            )
            for split, samples in splits.items()
        }
        log.info(
            "face crops in %s: %d reused, %d photos searched for a face",
            self.faces_cache_dir,
            counts.reused,
            counts.searched,
        )
        self._count_skipped(counts.unreadable)
        if counts.no_face:
            log.warning(
                "no face found in %d photo(s), left out: %s%s",
                len(counts.no_face),
                ", ".join(counts.no_face[:5]),
                ", ..." if len(counts.no_face) > 5 else "",
            )
        hint = (
            "Crop the faces larger in the photos, or let the detector find more: lower "
            f"data.face_min_neighbors (now {self.face_settings.min_neighbors}) or "
            f"data.face_min_size (now {self.face_settings.min_size}), or try "
            "data.face_cascade=haarcascade_frontalface_alt2.xml."
        )
        found = {target for _, target in kept["train"]}
        for i, name in enumerate(self.all_class_names):
            if i not in found:
                raise UserError(
                    f"No face was found in any training photo of the class {name} "
                    f"({os.path.join(self.split_dir('train'), name)}). {hint}"
                )
        for split, samples in kept.items():
            if not samples:
                raise UserError(
                    f"No face was found in any photo of {self.split_dir(split)}. {hint}"
                )
        return kept

    def _sample_splits(self) -> dict[str, list[tuple[str, int]]]:
        """The (image file, class index) pairs of each split present, worked out once (the
        in-memory path builds the datasets a second time)."""
        if self._splits is None:
            splits = {"train": self._samples("train")}
            for split in ("val", "test"):
                if os.path.isdir(self.split_dir(split)):
                    splits[split] = self._samples(split)
            if self.faces:
                splits = self._face_splits(splits)  # opens each new photo: skip_corrupt there
            elif self.skip_corrupt:
                splits = self._drop_unreadable(splits)
            self._splits = splits
        return self._splits

    def _build(self, train_tf, eval_tf):
        splits = self._sample_splits()
        if "val" in splits:
            train = ImageListDataset(splits["train"], train_tf)
            val = ImageListDataset(splits["val"], eval_tf)
        else:
            train, val = self._split_train(splits["train"], train_tf, eval_tf)
        if "test" in splits:
            test = ImageListDataset(splits["test"], eval_tf)
        else:
            log.info("no %s folder: the test split is the validation split", self.split_dir("test"))
            test = val
        return train, val, test

    def _split_train(self, samples, train_tf, eval_tf) -> tuple[Dataset, Dataset]:
        n_val = round(len(samples) * self.val_fraction)
        if not 0 < n_val < len(samples):
            raise UserError(
                f"There is no {self.split_dir('val')} folder, and data.val_fraction="
                f"{self.val_fraction} of the {len(samples)} training images leaves an empty "
                "train or validation split. Add a val/ folder or change data.val_fraction."
            )
        order = torch.randperm(len(samples), generator=self.split_generator()).tolist()
        train = Subset(ImageListDataset(samples, train_tf), order[n_val:])
        val = Subset(ImageListDataset(samples, eval_tf), order[:n_val])
        return train, val
