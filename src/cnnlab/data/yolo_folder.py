"""Detection data in the YOLO text layout (as ultralytics and many labelling tools write it):
under ``root`` the pictures in ``images/<split>/`` and, for each, ``labels/<split>/<stem>.txt``
with one object a line, ``class cx cy w h``: a 0-based class id, then the box's centre and size
as fractions (0..1) of the image's width and height. Splits: ``train`` and ``val``, and
``test`` when ``images/test`` exists (otherwise the test split is the validation split).

The class names come from ``root/data.yaml`` (``names:`` a list, or a mapping {0: name, ...})
or else from ``root/classes.txt`` (one name a line). Class id i becomes label i + 1 (0 is the
background). An image without a label file has no objects; a label file without an image is
left out with a warning. Boxes become x1, y1, x2, y2 in pixels of the image (its size read from
the file's header); a corner up to 1% of the side outside the image is clamped to it. The
image_id of an image is its index in its split, in file-name order.
"""

import logging
import math
import os
from typing import NoReturn

import yaml
from PIL import Image

from cnnlab.data.detection import DetectionDataModule
from cnnlab.data.detection_files import Checker, FileDetectionDataset, Record
from cnnlab.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")  # compared in lower case
EDGE_TOLERANCE = 0.01  # how far (a fraction of the side) a corner may lie outside; it is clamped
LAYOUT = (
    "images/train/ and images/val/ (pictures: .jpg, .jpeg, .png, .bmp, .webp), "
    "labels/train/ and labels/val/ (<image name>.txt, one 'class cx cy w h' line an object), "
    "optional images/test/ and labels/test/, and data.yaml (names: [...]) or classes.txt"
)
_LINE_FORMAT = (
    "A label line is 'class cx cy w h': a 0-based class id, then the box's centre x and y and "
    "its width and height as fractions (0..1) of the image's width and height"
)
_DROP_HINT = "Fix the label file, or set data.drop_invalid_boxes=true to leave such boxes out."
# What a broken image file can raise from PIL when its header is read.
_HEADER_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _names_error(path: str, problem: str) -> UserError:
    return UserError(
        f"{path}: {problem}. Write the class names in order of their id, as a list "
        "(names: [cat, dog]) or as a mapping of every id 0..K-1 to its name "
        "(names: {0: cat, 1: dog}), each name given once."
    )


def _checked_names(names: list, path: str) -> list[str]:
    """``names`` as strings, refused when empty, nested, blank or repeated."""
    if not names:
        raise _names_error(path, "the list of class names is empty")
    out = []
    for name in names:
        if isinstance(name, dict | list) or name is None or not str(name).strip():
            raise _names_error(path, f"{name!r} is not a class name")
        out.append(str(name).strip())
    repeated = sorted({n for n in out if out.count(n) > 1})
    if repeated:
        raise _names_error(path, f"the class names {', '.join(repeated)} appear more than once")
    return out


def _names_from_yaml(path: str) -> list[str] | None:
    """The ``names`` of a data.yaml as a list in id order; None when it has no ``names``."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UserError(
            f"Cannot read {path} ({err}). Fix the file (YAML with a names: entry), or delete it "
            "and list the class names in classes.txt, one a line."
        ) from err
    if not isinstance(data, dict) or data.get("names") is None:
        return None
    names = data["names"]
    if isinstance(names, dict):
        try:
            ids = sorted(int(i) for i in names)
        except (TypeError, ValueError):
            raise _names_error(
                path, f"the ids of names: {list(names)} are not all whole numbers"
            ) from None
        if ids != list(range(len(ids))):
            raise _names_error(path, f"the ids of names: are {ids}, not 0..{len(ids) - 1}")
        by_id = {int(i): name for i, name in names.items()}
        names = [by_id[i] for i in ids]
    elif not isinstance(names, list):
        raise _names_error(path, f"names: is {names!r}, neither a list nor a mapping")
    names = _checked_names(names, path)
    count = data.get("nc")
    if count is not None and count != len(names):
        raise _names_error(path, f"nc: {count} does not match the {len(names)} names given")
    return names


def read_class_names(root: str) -> list[str]:
    """The class names in id order, from ``root/data.yaml`` or else ``root/classes.txt``."""
    if not os.path.isdir(root):
        raise UserError(
            f"The YOLO folder data.root={root} does not exist. Point data.root at the folder "
            f"that holds {LAYOUT}."
        )
    data_yaml, classes_txt = os.path.join(root, "data.yaml"), os.path.join(root, "classes.txt")
    if os.path.isfile(data_yaml):
        names = _names_from_yaml(data_yaml)
        if names is not None:
            return names
    if os.path.isfile(classes_txt):
        try:
            with open(classes_txt, encoding="utf-8-sig") as f:
                return _checked_names([s.strip() for s in f if s.strip()], classes_txt)
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"Cannot read {classes_txt} ({err}). Fix or replace the file.") from err
    found = f"{data_yaml} has no names: entry" if os.path.isfile(data_yaml) else "neither exists"
    raise UserError(
        f"No class names for the YOLO folder data.root={root}: looked for {data_yaml} and "
        f"{classes_txt} ({found}). Write data.yaml with 'names: [cat, dog]' (class id 0 first) or "
        f"classes.txt with one name a line, in id order. The layout is {LAYOUT}."
    )


def header_size(path: str) -> tuple[int, int]:
    """(width, height) of an image, from its header only."""
    try:
        with Image.open(path) as image:
            return image.size
    except _HEADER_ERRORS as err:
        raise UserError(
            f"Cannot read the image {path} ({err}). Replace or delete the file."
        ) from err


class _LabelLine:
    """One line of a label file, for the messages about it."""

    def __init__(self, path: str, number: int, text: str, checker: Checker) -> None:
        self.path, self.number, self.text, self.checker = path, number, text, checker

    def refuse(self, problem: str, hint: str) -> NoReturn:
        raise UserError(f"{self.path}, line {self.number} ({self.text!r}): {problem}. {hint}")

    def drop_or_refuse(self, problem: str) -> None:
        """Count the box as dropped (drop_invalid_boxes), or refuse it."""
        if not self.checker.drop:
            self.refuse(problem, _DROP_HINT)
        self.checker.dropped.boxes += 1


def parse_line(line: _LabelLine, record: Record, num_classes: int):
    """(box xyxy in pixels, label 1..K) of one label line, or None when the box is dropped."""
    fields = line.text.split()
    if len(fields) != 5:
        line.refuse(
            f"it has {len(fields)} fields, not 5",
            f"{_LINE_FORMAT}; polygon (segmentation) and keypoint label lines are not read. "
            "Fix the label file, or convert its lines to boxes.",
        )
    try:
        values = [float(v) for v in fields]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        line.refuse("it holds a value that is not a number", f"{_LINE_FORMAT}. Fix the label file.")
    class_id, cx, cy, w, h = values
    if class_id != int(class_id):
        line.refuse(
            f"the class id {fields[0]} is not a whole number",
            f"{_LINE_FORMAT}. Fix the label file.",
        )
    if not 0 <= class_id < num_classes:
        return line.drop_or_refuse(
            f"the class id {int(class_id)} is not one of the dataset's {num_classes} classes "
            f"(ids 0..{num_classes - 1}, named in data.yaml or classes.txt)"
        )
    coords = zip(("cx", "cy", "w", "h"), values[1:], strict=True)
    outside = [f"{n} = {v:g}" for n, v in coords if not 0 <= v <= 1]
    if outside:
        return line.drop_or_refuse(
            f"{' and '.join(outside)} {'is' if len(outside) == 1 else 'are'} outside 0..1: "
            "YOLO coordinates are fractions of the image's width and height, not pixels"
        )
    corners = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    if min(corners) < -EDGE_TOLERANCE or max(corners) > 1 + EDGE_TOLERANCE:
        return line.drop_or_refuse(
            f"the box (x1, y1, x2, y2 = {', '.join(f'{c:g}' for c in corners)} in fractions of "
            f"the {record.width}x{record.height} image) reaches outside the image by more than "
            f"{EDGE_TOLERANCE:g} of its side"
        )
    sides = (record.width, record.height) * 2
    box = [min(max(c, 0.0), 1.0) * side for c, side in zip(corners, sides, strict=True)]
    if box[2] <= box[0] or box[3] <= box[1]:
        return line.drop_or_refuse("the box has zero width or height")
    return box, int(class_id) + 1


def read_labels(path: str, record: Record, num_classes: int, checker: Checker) -> None:
    """Add the objects of the label file ``path`` to ``record``; blank lines are skipped."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(
            f"Cannot read the label file {path} ({err}). Fix or delete it (an image without a "
            "label file has no objects)."
        ) from err
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        parsed = parse_line(_LabelLine(path, number, text.strip(), checker), record, num_classes)
        if parsed is not None:
            record.boxes.append(parsed[0])
            record.labels.append(parsed[1])
            record.iscrowd.append(0)


def _few(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


class YoloFolderDataModule(DetectionDataModule):
    """Detection over a YOLO-layout folder (see the module docstring)."""

    def __init__(self, root: str = "data/yolo", image_size: int | None = 512, **kwargs) -> None:
        super().__init__(root=root, image_size=image_size, **kwargs)
        self._class_names: list[str] | None = None

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            self._class_names = read_class_names(self.root)
        return list(self._class_names)

    def image_dir(self, split: str) -> str:
        return os.path.join(self.root, "images", split)

    def label_dir(self, split: str) -> str:
        return os.path.join(self.root, "labels", split)

    def _images(self, split: str) -> list[str]:
        """The image file names of the split's folder, sorted; a missing folder is refused."""
        folder = self.image_dir(split)
        if not os.path.isdir(folder):
            raise UserError(
                f"The YOLO image folder {folder} does not exist. data.root={self.root} must hold "
                f"{LAYOUT}."
            )
        images = sorted(
            f
            for f in os.listdir(folder)
            if f.lower().endswith(IMAGE_EXTENSIONS)
            and not f.startswith(".")  # hidden files, e.g. macOS's ._name.jpg
            and os.path.isfile(os.path.join(folder, f))
        )
        if not images:
            raise UserError(
                f"The YOLO image folder {folder} holds no images (looked for "
                f"{', '.join(IMAGE_EXTENSIONS)}). Add the split's pictures to it."
            )
        stems: dict[str, str] = {}
        for name in images:
            other = stems.setdefault(os.path.splitext(name)[0], name)
            if other != name:
                raise UserError(
                    f"{folder} holds both {other} and {name}, which would share one label file. "
                    "Rename or remove one of them."
                )
        return images

    def _labels(self, split: str) -> dict[str, str]:
        """{stem: label file name} of the split's label folder (none when it is missing)."""
        folder = self.label_dir(split)
        if not os.path.isdir(folder):
            log.warning("no label folder %s: every image of %s has no objects", folder, split)
            return {}
        return {
            os.path.splitext(f)[0]: f
            for f in sorted(os.listdir(folder))
            if f.lower().endswith(".txt")
            and not f.startswith(".")
            and os.path.isfile(os.path.join(folder, f))
        }

    def _records(self, split: str, checker: Checker) -> list[Record]:
        num_classes = len(self.class_names)
        labels = self._labels(split)
        records = []
        for image_id, name in enumerate(self._images(split)):
            path = os.path.join(self.image_dir(split), name)
            record = Record(path, image_id, *header_size(path))
            label = labels.pop(os.path.splitext(name)[0], None)
            if label is not None:
                read_labels(
                    os.path.join(self.label_dir(split), label), record, num_classes, checker
                )
            records.append(record)
        if labels:
            log.warning(
                "%s: left out %d label files without an image in %s: %s",
                self.label_dir(split),
                len(labels),
                self.image_dir(split),
                _few(list(labels.values())),
            )
        return records

    def _build(self, train_tf, eval_tf):
        checker = Checker(self.drop_invalid_boxes)
        train = FileDetectionDataset(self._records("train", checker), train_tf)
        val = FileDetectionDataset(self._records("val", checker), eval_tf)
        if os.path.isdir(self.image_dir("test")):
            test = FileDetectionDataset(self._records("test", checker), eval_tf)
        else:
            log.info("no %s: the test split is the validation split", self.image_dir("test"))
            test = val
        checker.log(self.root)
        self.dropped = vars(checker.dropped)
        return train, val, test
