"""YOLO text-layout detection data (data=yolo_folder) on small files written by the test."""

import logging

import pytest
import torch

from cnnlab.data.yolo_folder import YoloFolderDataModule
from cnnlab.errors import UserError
from cnnlab.factory import build

from datafiles import write_yolo_folder

CAT, FOX, DOG = [8, 12, 24, 36], [44, 0, 52, 48], [16, 12, 48, 36]  # pixels of the written lines


def module(root, **kwargs) -> YoloFolderDataModule:
    kwargs = {"image_size": None, "batch_size": 2, "augment": False, "num_workers": 0, **kwargs}
    return YoloFolderDataModule(root=str(root), **kwargs)


def set_label(root, lines: list[str], split="train", name="train_1") -> str:
    path = root / "labels" / split / f"{name}.txt"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def test_reads_boxes_and_labels_in_pixels(tmp_path, caplog):
    write_yolo_folder(tmp_path)
    dm = module(tmp_path)
    assert dm.class_names == ["cat", "dog", "fox"] and dm.num_classes == 4  # before setup
    with caplog.at_level(logging.INFO, logger="cnnlab.data.yolo_folder"):
        dm.setup()
    assert "test split is the validation split" in caplog.text
    assert dm.test_set is dm.val_set and len(dm.train_set) == 3 and len(dm.val_set) == 3
    image, target = dm.train_set[0]
    assert image.shape == (3, 48, 64) and image.dtype == torch.float32
    assert target["boxes"].tolist() == [CAT, FOX] and target["labels"].tolist() == [1, 3]
    assert target["iscrowd"].tolist() == [0, 0] and target["image_id"] == 0
    _, dog = dm.train_set[1]  # a .jpg; its label file starts with a blank line
    assert dog["boxes"].tolist() == [DOG] and dog["labels"].tolist() == [2]
    _, empty = dm.train_set[2]  # an empty label file
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    assert [dm.val_set[i][1]["image_id"] for i in range(3)] == [0, 1, 2]
    assert dm.dropped == {"boxes": 0, "images": 0}


def test_loaders_yield_lists(tmp_path):
    write_yolo_folder(tmp_path)
    dm = module(tmp_path)
    dm.setup()
    images, targets = next(iter(dm.val_dataloader()))
    assert isinstance(images, list) and isinstance(targets, list)
    assert len(images) == 2 and [t["image_id"] for t in targets] == [0, 1]
    images, targets = next(iter(dm.train_dataloader()))
    assert len(images) == len(targets) == 2


@pytest.mark.parametrize("names", ["mapping", "classes.txt"])
def test_class_names_from_a_mapping_or_classes_txt(tmp_path, names):
    write_yolo_folder(tmp_path, names=names)
    assert module(tmp_path).class_names == ["cat", "dog", "fox"]


@pytest.mark.parametrize(
    "data_yaml, problem",
    [
        ("names: {0: cat, 2: dog}\n", "not 0..1"),
        ("names: {a: cat}\n", "not all whole numbers"),
        ("names: [cat, cat]\n", "more than once"),
        ("names: []\n", "empty"),
        ("names: cat\n", "neither a list nor a mapping"),
        ("nc: 3\nnames: [cat, dog]\n", "does not match"),
        ("names: [cat\n", "Cannot read"),
    ],
)
def test_malformed_names_are_refused(tmp_path, data_yaml, problem):
    (tmp_path / "data.yaml").write_text(data_yaml)
    with pytest.raises(UserError, match=problem) as err:
        _ = module(tmp_path).class_names
    assert "data.yaml" in str(err.value)


def test_no_class_names_says_what_to_write(tmp_path):
    write_yolo_folder(tmp_path, names=None)
    with pytest.raises(UserError, match="classes.txt") as err:
        module(tmp_path).setup()
    assert "names: [cat, dog]" in str(err.value)
    (tmp_path / "data.yaml").write_text("path: .\n")  # no names: classes.txt is the fallback
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    assert module(tmp_path).class_names == ["a", "b", "c"]


def test_image_without_labels_and_labels_without_image(tmp_path, caplog):
    write_yolo_folder(tmp_path, n_images=2)
    (tmp_path / "labels" / "train" / "train_0.txt").unlink()
    set_label(tmp_path, ["0 0.5 0.5 0.1 0.1"], name="ghost")
    set_label(tmp_path, ["0 0.5 0.5 0.1 0.1"], name="phantom")
    (tmp_path / "images" / "train" / "notes.md").write_text("not a picture")
    dm = module(tmp_path)
    with caplog.at_level(logging.WARNING, logger="cnnlab.data.yolo_folder"):
        dm.setup()
    assert len(dm.train_set) == 2 and dm.train_set[0][1]["boxes"].shape == (0, 4)
    assert "left out 2 label files without an image" in caplog.text
    assert "ghost.txt" in caplog.text and "phantom.txt" in caplog.text


def test_separate_test_split(tmp_path):
    write_yolo_folder(tmp_path, splits=("train", "val", "test"), n_images=2)
    dm = module(tmp_path)
    dm.setup()
    assert dm.test_set is not dm.val_set and len(dm.test_set) == 2
    assert dm.test_set[0][0].shape == (3, 48, 64)
    assert dm.test_set[0][1]["boxes"].tolist() == [CAT, FOX]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("0 0.5 0.5 0.2", "4 fields, not 5"),
        ("0 0.1 0.1 0.5 0.1 0.5 0.5", "polygon"),
        ("0 0.5 half 0.2 0.2", "not a number"),
        ("0 0.5 nan 0.2 0.2", "not a number"),
        ("1.5 0.5 0.5 0.2 0.2", "not a whole number"),
        ("3 0.5 0.5 0.2 0.2", "class id 3 is not one of the dataset's 3 classes"),
        ("-1 0.5 0.5 0.2 0.2", "class id -1"),
        ("0 32 24 10 10", "cx = 32 and cy = 24 and w = 10 and h = 10 are outside 0..1"),
        ("0 0.5 0.5 1.2 0.2", "w = 1.2 is outside 0..1"),
        ("0 0.5 0.5 0 0.2", "zero width or height"),
        ("0 0.9 0.5 0.4 0.2", "outside the image"),
    ],
)
def test_refused_lines_name_the_file_and_line(tmp_path, line, problem):
    write_yolo_folder(tmp_path)
    path = set_label(tmp_path, ["1 0.5 0.5 0.5 0.5", "", line])
    with pytest.raises(UserError, match=problem) as err:
        module(tmp_path).setup()
    assert f"{path}, line 3 ({line!r})" in str(err.value)


def test_small_overshoot_is_clamped(tmp_path):
    write_yolo_folder(tmp_path)
    set_label(tmp_path, ["0 0.9 0.5 0.21 1"])  # x2 = 1.005: inside the 1% tolerance
    dm = module(tmp_path)
    dm.setup()
    (x1, y1, x2, y2), *_ = dm.train_set[1][1]["boxes"].tolist()
    assert (x2, y1, y2) == (64, 0, 48) and x1 == pytest.approx(0.795 * 64)


def test_drop_invalid_boxes_counts_them(tmp_path, caplog):
    write_yolo_folder(tmp_path)
    set_label(tmp_path, ["7 0.5 0.5 0.2 0.2", "1 0.5 0.5 0.5 0.5", "0 0.5 0.5 0 0.2"])
    set_label(tmp_path, ["0 0.9 0.5 0.4 0.2"], split="val", name="val_2")
    dm = module(tmp_path, drop_invalid_boxes=True)
    with caplog.at_level(logging.WARNING, logger="cnnlab.data.detection_files"):
        dm.setup()
    assert dm.dropped == {"boxes": 3, "images": 0}
    assert "left out 3 invalid boxes" in caplog.text
    assert dm.train_set[1][1]["boxes"].tolist() == [DOG]
    assert dm.val_set[2][1]["boxes"].shape == (0, 4)
    set_label(tmp_path, ["0 0.5 0.5 0.2"])  # a line in another format is refused all the same
    with pytest.raises(UserError, match="line 1"):
        module(tmp_path, drop_invalid_boxes=True).setup()


def test_missing_image_folder_names_the_layout(tmp_path):
    with pytest.raises(UserError, match="nowhere does not exist"):
        module(tmp_path / "nowhere").setup()
    write_yolo_folder(tmp_path, splits=("train",))
    with pytest.raises(UserError, match="images/val does not exist") as err:
        module(tmp_path).setup()
    assert "labels/train/" in str(err.value) and "data.yaml" in str(err.value)


def test_config_builds_the_datamodule(make_cfg, tmp_path):
    write_yolo_folder(tmp_path / "yolo")
    cfg = make_cfg(["data=yolo_folder", f"data.root={tmp_path / 'yolo'}", "data.num_workers=0"])
    task, dm = build.build_datamodule(cfg.data)
    assert task == "detection" and isinstance(dm, YoloFolderDataModule)
    assert dm.num_classes == 4 and dm.image_size == 512 and not dm.drop_invalid_boxes
    dm.setup()
    assert len(dm.train_set) == 3 and dm.test_set is dm.val_set
