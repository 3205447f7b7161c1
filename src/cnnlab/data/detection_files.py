"""Detection data read from files (COCO json, Pascal VOC xml): one record per image, the checks
that every annotated box gets, and the dataset that reads the images.

A broken annotation is a UserError naming the image and the box, unless ``drop`` is set: then
the box (or the image, when its file is missing) is left out and counted in ``Dropped``.
"""

import logging
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import pil_to_tensor

from cnnlab.data.detection import make_target
from cnnlab.data.imagefolder import load_rgb
from cnnlab.errors import UserError

log = logging.getLogger(__name__)
TOLERANCE = 1.0  # pixels a box may stick out of its image (rounding in tools); it is clamped


@dataclass
class Record:
    """One image: its file, id, annotated size and objects (boxes xyxy in pixels, labels 1..K,
    iscrowd 1 for objects that evaluation ignores)."""

    path: str
    image_id: int
    width: int
    height: int
    boxes: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    iscrowd: list = field(default_factory=list)


@dataclass
class Dropped:
    """What ``drop_invalid_boxes`` left out."""

    boxes: int = 0
    images: int = 0


def _fix_hint() -> str:
    return "Fix the annotation file, or set data.drop_invalid_boxes=true to leave such boxes out."


class Checker:
    """Applies the checks below to records; ``drop`` leaves bad boxes / images out and counts."""

    def __init__(self, drop: bool) -> None:
        self.drop = drop
        self.dropped = Dropped()

    def image_exists(self, path: str, annotations: str) -> bool:
        if os.path.isfile(path):
            return True
        if self.drop:
            self.dropped.images += 1
            return False
        raise UserError(
            f"The image file {path}, listed in {annotations}, does not exist. Check data.root "
            "and the image folder settings, add the file, or set data.drop_invalid_boxes=true "
            "to skip images whose file is missing."
        )

    def box(self, record: Record, box, label, what: str) -> list[float] | None:
        """``box`` (x1, y1, x2, y2) clamped to the image, or None when dropped; ``label`` None
        means an unknown class, ``what`` describes the box for the message."""
        x1, y1, x2, y2 = (float(v) for v in box)
        w, h, t = record.width, record.height, TOLERANCE
        problem = None
        if label is None:
            problem = "its class is not one of the dataset's classes"
        elif not all(np.isfinite([x1, y1, x2, y2])) or x2 <= x1 or y2 <= y1:
            problem = "it is empty (x2 <= x1 or y2 <= y1)"
        elif x1 < -t or y1 < -t or x2 > w + t or y2 > h + t:
            problem = f"it lies (partly) outside the {w}x{h} image"
        if problem is None:
            return [max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))]
        if self.drop:
            self.dropped.boxes += 1
            return None
        raise UserError(
            f"Invalid box in the annotations of the image {record.path}: {what} "
            f"(x1, y1, x2, y2 = {x1:g}, {y1:g}, {x2:g}, {y2:g}): {problem}. {_fix_hint()}"
        )

    def log(self, source: str) -> None:
        if self.dropped.boxes or self.dropped.images:
            log.warning(
                "%s: left out %d invalid boxes and %d images whose file is missing "
                "(data.drop_invalid_boxes=true)",
                source,
                self.dropped.boxes,
                self.dropped.images,
            )


def without_crowd(records: list[Record]) -> list[Record]:
    """The records with their ignored objects (iscrowd 1) removed: what training sees."""
    out = []
    for r in records:
        keep = [i for i, c in enumerate(r.iscrowd) if not c]
        out.append(
            Record(
                r.path,
                r.image_id,
                r.width,
                r.height,
                [r.boxes[i] for i in keep],
                [r.labels[i] for i in keep],
                [0] * len(keep),
            )
        )
    return out


class FileDetectionDataset(Dataset):
    """``(image, target)`` for each record: the image read as RGB, then ``transform``."""

    def __init__(self, records: list[Record], transform=None) -> None:
        self.records, self.transform = records, transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        r = self.records[index]
        image: Image.Image = load_rgb(r.path)
        if image.size != (r.width, r.height):
            raise UserError(
                f"The image {r.path} is {image.size[0]}x{image.size[1]} pixels, but its "
                f"annotations say {r.width}x{r.height}. Fix the width/height in the annotation "
                "file (or replace the image), so that the boxes refer to this image."
            )
        target = make_target(r.boxes, r.labels, r.image_id, r.iscrowd)
        tensor = pil_to_tensor(image)
        return self.transform(tensor, target) if self.transform else (tensor, target)
