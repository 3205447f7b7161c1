"""COCO-style detection data: an image folder and an ``instances`` json per split.

Categories are mapped to labels 1..K in the order of their category id (0 is the background);
the class names are the categories' names in the training json. Boxes [x, y, w, h] become
x1, y1, x2, y2. Crowd annotations (``iscrowd: 1``) are left out of training targets and kept,
marked ``iscrowd``, in validation and test targets so that evaluation can ignore them.
Images without annotations are kept. Without test files the test split is the validation split.
"""

import json
import logging
import os

from cnnlab.data.detection import DetectionDataModule
from cnnlab.data.detection_files import Checker, FileDetectionDataset, Record, without_crowd
from cnnlab.errors import UserError

log = logging.getLogger(__name__)


def read_json(path: str, key: str = "data.train_annotations") -> dict:
    """The COCO instances json at ``path``; ``key`` is the setting that named it (messages)."""
    if not os.path.isfile(path):
        raise UserError(
            f"The COCO annotation file {path} does not exist. Set data.root to the folder that "
            "holds it, or point data.train_annotations / val_annotations / test_annotations "
            "(relative to data.root) at your instances json files."
        )
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as err:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(
            f"The COCO annotation file {path} ({key}) is not valid JSON: {err}. Point {key} "
            "(relative to data.root) at a COCO instances json file, or fix or replace the file."
        ) from err
    except OSError as err:
        raise UserError(
            f"Cannot read the COCO annotation file {path} ({key}): {err}. Check the file's "
            f"permissions, or point {key} (relative to data.root) at another file."
        ) from err
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise UserError(
            f"{path} ({key}) is not a COCO instances file: it needs the keys images, annotations "
            "and categories (see https://cocodataset.org/#format-data)."
        )
    return data


def read_records(data: dict, path: str, image_dir: str, labels: dict, checker: Checker):
    """One Record per image of ``data`` (a COCO json read from ``path``)."""
    records: dict[int, Record] = {}
    for image in data["images"]:
        file = os.path.join(image_dir, image["file_name"])
        if checker.image_exists(file, path):
            records[image["id"]] = Record(file, int(image["id"]), image["width"], image["height"])
    for ann in data["annotations"]:
        record = records.get(ann["image_id"])
        if record is None:  # its image was skipped (missing file) or is not listed
            continue
        x, y, w, h = ann["bbox"]
        what = f"annotation id {ann.get('id')}, category id {ann.get('category_id')}"
        label = labels.get(ann.get("category_id"))
        box = checker.box(record, (x, y, x + w, y + h), label, what)
        if box is not None:
            record.boxes.append(box)
            record.labels.append(label)
            record.iscrowd.append(int(bool(ann.get("iscrowd", 0))))
    return list(records.values())


class CocoDetectionDataModule(DetectionDataModule):
    """Detection over ``root/<images folder>`` with COCO instances json files."""

    def __init__(
        self,
        root: str = "data/coco",
        image_size: int | None = 512,
        train_images: str = "train2017",
        val_images: str = "val2017",
        test_images: str | None = None,
        train_annotations: str = "annotations/instances_train2017.json",
        val_annotations: str = "annotations/instances_val2017.json",
        test_annotations: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root=root, image_size=image_size, **kwargs)
        self.images = {"train": train_images, "val": val_images, "test": test_images}
        self.annotations = {
            "train": train_annotations,
            "val": val_annotations,
            "test": test_annotations,
        }
        self._categories: list[dict] | None = None
        self._train_json: dict | None = None

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    @property
    def categories(self) -> list[dict]:
        """The training json's categories, in category-id order (label i + 1)."""
        if self._categories is None:
            self._train_json = read_json(self._path(self.annotations["train"]))
            self._categories = sorted(self._train_json["categories"], key=lambda c: c["id"])
        return self._categories

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.categories]

    def _split(self, split: str, labels: dict, checker: Checker) -> list[Record]:
        path = self._path(self.annotations[split])
        if split == "train" and self._train_json is not None:
            data, self._train_json = self._train_json, None  # read once, then let it go
        else:
            data = read_json(path, f"data.{split}_annotations")
        return read_records(data, path, self._path(self.images[split]), labels, checker)

    def _build(self, train_tf, eval_tf):
        labels = {c["id"]: i + 1 for i, c in enumerate(self.categories)}
        checker = Checker(self.drop_invalid_boxes)
        train = without_crowd(self._split("train", labels, checker))
        val = FileDetectionDataset(self._split("val", labels, checker), eval_tf)
        if self.annotations["test"] is None:
            log.info("no data.test_annotations: the test split is the validation split")
            test = val
        else:
            if self.images["test"] is None:
                self.images["test"] = self.images["val"]
            test = FileDetectionDataset(self._split("test", labels, checker), eval_tf)
        checker.log(self.root)
        self.dropped = vars(checker.dropped)
        return FileDetectionDataset(train, train_tf), val, test
