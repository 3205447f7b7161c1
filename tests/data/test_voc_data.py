"""Pascal VOC-style detection data on small files written by the test."""

import logging

import pytest

from cnnlab.data.voc import VocDetectionDataModule
from cnnlab.errors import UserError

from datafiles import write_voc, write_voc_xml

CLASSES = ["cat", "dog", "person"]


def module(root, **kwargs) -> VocDetectionDataModule:
    kwargs = {"classes": CLASSES, "image_size": None, "batch_size": 2, "augment": False, **kwargs}
    return VocDetectionDataModule(root=str(root), **kwargs)


def test_reads_boxes_labels_and_falls_back_to_val(tmp_path):
    write_voc(tmp_path)
    dm = module(tmp_path)
    assert dm.num_classes == 4
    dm.setup()
    assert dm.test_set is dm.val_set and len(dm.train_set) == 3
    image, target = dm.train_set[0]
    assert image.shape == (3, 48, 64) and target["image_id"] == 0
    assert target["boxes"].tolist() == [[4, 6, 24, 16]] and target["labels"].tolist() == [1]
    assert dm.train_set[1][1]["labels"].tolist() == [3]
    assert dm.train_set[2][1]["boxes"].shape == (0, 4)
    images, targets = next(iter(dm.train_dataloader()))
    assert len(images) == 2 and len(targets) == 2


def test_difficult_objects(tmp_path):
    write_voc(tmp_path, splits=("train", "val", "test"))
    dm = module(tmp_path)
    dm.setup()
    assert dm.test_set is not dm.val_set
    _, val = dm.val_set[0]  # kept for evaluation, marked to be ignored
    assert val["labels"].tolist() == [1, 2] and val["iscrowd"].tolist() == [0, 1]
    assert val["boxes"][1].tolist() == [29, 0, 64, 48]
    with_difficult = module(tmp_path, use_difficult=True)
    with_difficult.setup()
    assert with_difficult.train_set[0][1]["labels"].tolist() == [1, 2]
    assert with_difficult.val_set[0][1]["iscrowd"].tolist() == [0, 0]


def test_bad_annotations_name_the_image(tmp_path):
    write_voc(tmp_path)
    xml = tmp_path / "Annotations" / "train_1.xml"
    write_voc_xml(xml, [("person", (30, 10, 20, 40), 0)])
    with pytest.raises(UserError, match="empty") as err:
        module(tmp_path).setup()
    assert "train_1.jpg" in str(err.value) and "object 0 ('person')" in str(err.value)
    write_voc_xml(xml, [("unicorn", (3, 3, 10, 10), 0)])
    with pytest.raises(UserError, match="not one of the dataset's classes"):
        module(tmp_path).setup()
    write_voc_xml(xml, [("cat", (3, 3, 90, 10), 0)])
    with pytest.raises(UserError, match="outside the 64x48 image"):
        module(tmp_path).setup()
    (tmp_path / "JPEGImages" / "val_2.jpg").unlink()
    dm = module(tmp_path, drop_invalid_boxes=True)
    dm.setup()
    assert dm.dropped == {"boxes": 1, "images": 1} and len(dm.val_set) == 2
    write_voc_xml(xml, [])
    with pytest.raises(UserError, match="val_2.jpg"):
        module(tmp_path).setup()


def test_missing_split_file_and_bad_classes(tmp_path, caplog):
    with pytest.raises(UserError, match="train.txt"):
        module(tmp_path).setup()
    with pytest.raises(UserError, match="distinct"):
        module(tmp_path, classes=["cat", "cat"])
    write_voc(tmp_path)
    with caplog.at_level(logging.INFO, logger="cnnlab.data.voc"):
        module(tmp_path).setup()
    assert "test split is the validation split" in caplog.text
