"""COCO json detection data on small files written by the test."""

import json
import logging

import pytest
import torch

from cnnlab.data.coco import CocoDetectionDataModule
from cnnlab.errors import UserError

from datafiles import write_coco

TRAIN_JSON = "annotations/instances_train2017.json"


def module(root, **kwargs) -> CocoDetectionDataModule:
    kwargs = {"image_size": None, "batch_size": 2, "augment": False, **kwargs}
    return CocoDetectionDataModule(root=str(root), **kwargs)


def edit_train_json(root, change) -> None:
    path = root / TRAIN_JSON
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_labels_follow_category_ids_and_boxes_become_xyxy(tmp_path):
    write_coco(tmp_path)
    dm = module(tmp_path)
    assert dm.class_names == ["cat", "dog", "fox"] and dm.num_classes == 4
    dm.setup()
    assert dm.test_set is dm.val_set and len(dm.train_set) == 3
    image, target = dm.train_set[0]
    assert image.shape == (3, 48, 64) and image.dtype == torch.float32
    assert target["image_id"] == 100
    assert target["boxes"].tolist() == [[4, 6, 24, 16], [30, 0, 64, 48]]
    assert target["labels"].tolist() == [1, 3]
    _, crowded = dm.train_set[1]  # the crowd dog is not trained on ...
    assert crowded["labels"].tolist() == [2] and crowded["iscrowd"].tolist() == [0]
    _, val = dm.val_set[1]  # ... and is marked for evaluation to ignore
    assert val["labels"].tolist() == [2, 2] and val["iscrowd"].tolist() == [0, 1]
    _, empty = dm.train_set[2]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    images, targets = next(iter(dm.val_dataloader()))
    assert len(images) == 2 and [t["image_id"] for t in targets] == [200, 201]


def test_separate_test_files(tmp_path):
    write_coco(tmp_path, folders=("train2017", "val2017", "test2017"))
    dm = module(
        tmp_path,
        test_images="test2017",
        test_annotations="annotations/instances_test2017.json",
    )
    dm.setup()
    assert dm.test_set is not dm.val_set and dm.test_set[0][1]["image_id"] == 300


@pytest.mark.parametrize(
    "bbox, problem",
    [([10, 10, 0, 5], "empty"), ([10, 10, 5, -2], "empty"), ([50, 10, 30, 5], "outside")],
)
def test_bad_box_names_image_and_box(tmp_path, bbox, problem):
    write_coco(tmp_path)
    edit_train_json(tmp_path, lambda d: d["annotations"][0].update(bbox=bbox))
    with pytest.raises(UserError, match=problem) as err:
        module(tmp_path).setup()
    message = str(err.value)
    assert "000.png" in message and "annotation id 1" in message
    assert "data.drop_invalid_boxes=true" in message


def test_unknown_category_and_missing_image(tmp_path):
    write_coco(tmp_path)
    edit_train_json(tmp_path, lambda d: d["annotations"][1].update(category_id=99))
    with pytest.raises(UserError, match="category id 99") as err:
        module(tmp_path).setup()
    assert "not one of the dataset's classes" in str(err.value)
    write_coco(tmp_path)
    (tmp_path / "train2017" / "001.jpg").unlink()
    with pytest.raises(UserError, match="001.jpg") as err:
        module(tmp_path).setup()
    assert "does not exist" in str(err.value)


def test_drop_invalid_boxes_counts_and_logs(tmp_path, caplog):
    write_coco(tmp_path)

    def break_it(data):
        data["annotations"][0]["bbox"] = [10, 10, 0, 5]
        data["annotations"][1]["category_id"] = 99

    edit_train_json(tmp_path, break_it)
    (tmp_path / "val2017" / "002.png").unlink()
    dm = module(tmp_path, drop_invalid_boxes=True)
    with caplog.at_level(logging.WARNING, logger="cnnlab.data.detection_files"):
        dm.setup()
    assert dm.dropped == {"boxes": 2, "images": 1}
    assert "left out 2 invalid boxes and 1 images" in caplog.text
    assert dm.train_set[0][1]["boxes"].shape == (0, 4) and len(dm.val_set) == 2


def test_missing_annotation_file_is_named(tmp_path):
    with pytest.raises(UserError, match="instances_train2017.json"):
        _ = module(tmp_path).num_classes
