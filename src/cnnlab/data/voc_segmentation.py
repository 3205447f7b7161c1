"""Pascal VOC-style segmentation data, without the year folder: under ``root``
``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` and
``ImageSets/Segmentation/{train,val,test}.txt`` (one image id a line; without test.txt the test
split is the validation split).

The masks are palette PNGs: each pixel's palette index is its class id (0 background, 1..20 the
VOC classes in ``VOC_CLASSES`` order) and 255 marks the border around objects, which loss and
metrics ignore. They are read by index, never converted to colours. ``data.classes`` may name
another list (index = pixel value, background first) for a VOC-layout folder of other classes.
That every listed image and mask exists is checked at setup; the pixels of a mask are checked
when it is read (``mask_folder.read_mask``), so a full VOC set costs no scan at start-up.
"""

import logging
import os
from collections.abc import Sequence

from cnnlab.data.mask_folder import MaskFileDataset, check_classes
from cnnlab.data.segmentation import SegmentationDataModule
from cnnlab.data.voc import VOC_CLASSES
from cnnlab.errors import UserError

log = logging.getLogger(__name__)

VOC_SEGMENTATION_CLASSES = ("background", *VOC_CLASSES)  # ids 0..20 of the VOC masks


class VocSegmentationDataModule(SegmentationDataModule):
    """Segmentation over a VOC-layout folder; ``classes`` names the ids 0..K-1 in order."""

    def __init__(
        self,
        root: str = "data/VOCdevkit/VOC2012",
        image_size: int | None = 320,
        classes: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root=root, image_size=image_size, **kwargs)
        self.classes = check_classes(VOC_SEGMENTATION_CLASSES if classes is None else classes)
        if self.classes[0] != "background":
            raise UserError(
                f"data.classes={self.classes} must start with background: pixel value 0 of a "
                f"VOC mask is the background. Use data.classes=[background,{self.classes[0]},...]."
            )

    @property
    def class_names(self) -> list[str]:
        return list(self.classes)

    def split_file(self, split: str) -> str:
        return os.path.join(self.root, "ImageSets", "Segmentation", f"{split}.txt")

    def _ids(self, split: str) -> list[str]:
        path = self.split_file(split)
        if not os.path.isfile(path):
            raise UserError(
                f"The VOC split file {path} does not exist. data.root={self.root} must hold "
                "JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/train.txt and val.txt "
                "(test.txt is optional)."
            )
        with open(path, encoding="utf-8") as f:
            return [line.split()[0] for line in f if line.strip()]

    def _listing(self, folder: str) -> set[str]:
        """The file names in ``root/folder``: one listing instead of a stat per image."""
        path = os.path.join(self.root, folder)
        if not os.path.isdir(path):
            raise UserError(
                f"The folder {path} does not exist. data.root={self.root} must hold the VOC "
                "folders JPEGImages/ and SegmentationClass/ (set data.root to the folder that "
                "holds them, e.g. .../VOCdevkit/VOC2012)."
            )
        return set(os.listdir(path))

    def _pairs(self, split: str, images: set[str], masks: set[str]) -> list[tuple[str, str]]:
        pairs = []
        for name in self._ids(split):
            image = os.path.join(self.root, "JPEGImages", f"{name}.jpg")
            mask = os.path.join(self.root, "SegmentationClass", f"{name}.png")
            if f"{name}.jpg" not in images:
                raise UserError(
                    f"The image {image} listed in {self.split_file(split)} does not exist. Add "
                    "it, or remove its id from the split file."
                )
            if f"{name}.png" not in masks:
                hint = (
                    " (VOC's own test images come without masks: delete or rename test.txt and "
                    "the validation split is tested instead)"
                    if split == "test"
                    else ""
                )
                raise UserError(
                    f"The image {image} listed in {self.split_file(split)} has no mask {mask}"
                    f"{hint}. Add the mask, or remove the id from the split file."
                )
            pairs.append((image, mask))
        return pairs

    def _build(self, train_tf, eval_tf):
        if not os.path.isdir(self.root):
            raise UserError(
                f"The VOC folder data.root={self.root} does not exist. Point data.root at the "
                "folder that holds JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/."
            )
        images, masks = self._listing("JPEGImages"), self._listing("SegmentationClass")
        k = self.num_classes
        train = MaskFileDataset(self._pairs("train", images, masks), k, train_tf)
        val = MaskFileDataset(self._pairs("val", images, masks), k, eval_tf)
        if os.path.isfile(self.split_file("test")):
            test = MaskFileDataset(self._pairs("test", images, masks), k, eval_tf)
        else:
            log.info("no %s: the test split is the validation split", self.split_file("test"))
            test = val
        return train, val, test
