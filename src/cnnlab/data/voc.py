"""Pascal VOC-style detection data, without the year folder: under ``root``
``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg`` and ``ImageSets/Main/{train,val,test}.txt``
(one image id a line; without test.txt the test split is the validation split).

VOC pixel coordinates start at 1 and include both ends, so a box ``xmin..xmax`` becomes
x1 = xmin - 1, x2 = xmax. Objects marked ``difficult``: with ``use_difficult=false`` (VOC's own
protocol) they are left out of training targets and kept, marked ``iscrowd`` = 1, in validation
and test targets, so that the mAP neither rewards nor punishes detections of them (torchmetrics'
MeanAveragePrecision ignores crowd objects); with true they are ordinary objects everywhere.
The image_id of an image is its line number in its split file (0-based).
"""

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from cnnlab.data.detection import DetectionDataModule
from cnnlab.data.detection_files import Checker, FileDetectionDataset, Record, without_crowd
from cnnlab.errors import UserError

log = logging.getLogger(__name__)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


def _number(node: ET.Element, tag: str, xml_path: str) -> float:
    text = node.findtext(tag)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise UserError(
            f"{xml_path}: <{tag}> is {text!r}, not a number. Fix the annotation file."
        ) from None


def read_annotation(xml_path: str, image_path: str, image_id: int, labels: dict, checker):
    """The Record of one VOC xml file; ``labels`` maps class names to 1..K."""
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as err:
        raise UserError(
            f"Cannot read the VOC annotation file {xml_path} ({err}). Add or fix the file, or "
            "remove its image id from the ImageSets/Main split files."
        ) from err
    size = root.find("size")
    if size is None:
        raise UserError(f"{xml_path} has no <size> element. Fix the annotation file.")
    width, height = int(_number(size, "width", xml_path)), int(_number(size, "height", xml_path))
    record = Record(image_path, image_id, width, height)
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise UserError(f"{xml_path}: object {i} ({name}) has no <bndbox>. Fix the file.")
        xmin, ymin, xmax, ymax = (
            _number(bndbox, t, xml_path) for t in ("xmin", "ymin", "xmax", "ymax")
        )
        what = f"object {i} ({name!r})"
        box = checker.box(record, (xmin - 1, ymin - 1, xmax, ymax), labels.get(name), what)
        if box is not None:
            record.boxes.append(box)
            record.labels.append(labels[name])
            record.iscrowd.append(int((obj.findtext("difficult") or "0").strip() == "1"))
    return record


class VocDetectionDataModule(DetectionDataModule):
    """Detection over a VOC-layout folder; ``classes`` names the labels 1..K in order."""

    def __init__(
        self,
        root: str = "data/voc",
        image_size: int | None = 512,
        classes: Sequence[str] = VOC_CLASSES,
        use_difficult: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(root=root, image_size=image_size, **kwargs)
        self.classes = list(classes)
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise UserError(
                f"data.classes={self.classes} must be a non-empty list of distinct class names "
                "(the <name> values of the VOC annotation files)."
            )
        self.use_difficult = use_difficult

    @property
    def class_names(self) -> list[str]:
        return list(self.classes)

    def split_file(self, split: str) -> str:
        return os.path.join(self.root, "ImageSets", "Main", f"{split}.txt")

    def _ids(self, split: str) -> list[str]:
        path = self.split_file(split)
        if not os.path.isfile(path):
            raise UserError(
                f"The VOC split file {path} does not exist. data.root={self.root} must hold "
                "Annotations/, JPEGImages/ and ImageSets/Main/train.txt and val.txt (test.txt "
                "is optional)."
            )
        with open(path, encoding="utf-8") as f:
            return [line.split()[0] for line in f if line.strip()]

    def _records(self, split: str, checker: Checker) -> list[Record]:
        labels = {name: i + 1 for i, name in enumerate(self.classes)}
        records = []
        for image_id, name in enumerate(self._ids(split)):
            image = os.path.join(self.root, "JPEGImages", f"{name}.jpg")
            xml = os.path.join(self.root, "Annotations", f"{name}.xml")
            if checker.image_exists(image, self.split_file(split)):
                records.append(read_annotation(xml, image, image_id, labels, checker))
        if self.use_difficult:
            for r in records:
                r.iscrowd = [0] * len(r.iscrowd)
        return records

    def _build(self, train_tf, eval_tf):
        checker = Checker(self.drop_invalid_boxes)
        train = FileDetectionDataset(without_crowd(self._records("train", checker)), train_tf)
        val = FileDetectionDataset(self._records("val", checker), eval_tf)
        if os.path.isfile(self.split_file("test")):
            test = FileDetectionDataset(self._records("test", checker), eval_tf)
        else:
            log.info("no %s: the test split is the validation split", self.split_file("test"))
            test = val
        checker.log(self.root)
        self.dropped = vars(checker.dropped)
        return train, val, test
