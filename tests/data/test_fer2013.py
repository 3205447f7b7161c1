"""FER-2013 from small CSVs in Kaggle's format, written by tests/datafiles.py."""

import logging

import pytest
import torch

from cnnlab.cli.train import train
from cnnlab.data.fer2013 import EMOTIONS, FER2013DataModule, read_fer2013
from cnnlab.errors import UserError

from datafiles import write_fer2013


def module(root, **kwargs) -> FER2013DataModule:
    return FER2013DataModule(root=str(root), batch_size=4, **kwargs)


def test_usage_column_gives_the_splits(tmp_path):
    write_fer2013(tmp_path / "fer2013.csv", n_per_split=14)
    dm = module(tmp_path)
    assert dm.class_names == list(EMOTIONS) and (dm.num_classes, dm.in_channels) == (7, 1)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (14, 14, 14)
    assert dm.train_set.images.dtype == torch.uint8
    assert set(dm.test_set.labels.tolist()) == set(range(7))
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 48, 48) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert dm.hflip


def test_pixels_are_read_row_major(tmp_path):
    path = write_fer2013(tmp_path / "fer2013.csv", n_per_split=2)
    x, y, usage = read_fer2013(str(path))
    second_row = open(path).read().splitlines()[1]
    first = [int(v) for v in second_row.split(",")[1].split()]
    assert x.shape == (6, 1, 48, 48) and x[0, 0, 1, 0] == first[48] and x[0, 0, 0, 5] == first[5]
    assert y.tolist() == [0, 1] * 3 and usage == ["train"] * 2 + ["val"] * 2 + ["test"] * 2


def test_without_usage_splits_80_10_10_by_seed(tmp_path, caplog):
    write_fer2013(tmp_path / "train.csv", n_per_split=70, with_usage=False)  # 30 per emotion
    dm = module(tmp_path, file="train.csv")
    with caplog.at_level(logging.INFO, logger="cnnlab.data.fer2013"):
        dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (168, 21, 21)
    assert all(dm.val_set.labels.bincount().eq(3))
    assert "no Usage column" in caplog.text and "stratified" in caplog.text
    again = module(tmp_path, file="train.csv")
    again.setup()
    assert torch.equal(again.val_set.images, dm.val_set.images)
    other = module(tmp_path, file="train.csv", split_seed=1)
    other.setup()
    assert not torch.equal(other.val_set.images, dm.val_set.images)


def test_missing_file_says_where_to_get_it(tmp_path):
    dm = module(tmp_path / "nowhere")  # instantiating reads nothing
    with pytest.raises(UserError) as err:
        dm.setup()
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "fer2013.csv") in message
    assert "kaggle.com" in message and "Facial Expression Recognition Challenge" in message
    assert "login" in message


def test_wrong_pixel_count_names_the_line(tmp_path):
    path = write_fer2013(tmp_path / "fer2013.csv", n_per_split=3)
    lines = path.read_text().splitlines()
    emotion, pixels, usage = lines[4].split(",")
    lines[4] = ",".join([emotion, pixels.rsplit(" ", 1)[0], usage])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"line 5: 2303 pixel values instead of 2304"):
        module(tmp_path).setup()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda e, p, u: f"9,{p},{u}", "emotion '9'"),
        (lambda e, p, u: f"{e},x {p.split(' ', 1)[1]},{u}", "not whole numbers"),
        (lambda e, p, u: f"{e},256 {p.split(' ', 1)[1]},{u}", "outside 0..255"),
        (lambda e, p, u: f"{e},{p},Validation", "Usage 'Validation'"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, change, problem):
    path = write_fer2013(tmp_path / "fer2013.csv", n_per_split=3)
    lines = path.read_text().splitlines()
    lines[2] = change(*lines[2].split(","))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="line 3") as err:
        module(tmp_path).setup()
    assert problem in str(err.value)


def test_missing_columns_are_named(tmp_path):
    (tmp_path / "fer2013.csv").write_text("label,image\n0,1 2 3\n")
    with pytest.raises(UserError, match="no column emotion or pixels"):
        module(tmp_path).setup()


def test_class_subset_works_on_faces(tmp_path):
    write_fer2013(tmp_path / "fer2013.csv", n_per_split=21)
    dm = module(tmp_path, classes=["Happy", "Sad"], samples_per_class=2)
    assert dm.num_classes == 2
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set)) == (4, 6)
    assert sorted(dm.train_set.labels) == [0, 0, 1, 1]


def test_fast_dev_run_through_the_cli(make_cfg, tmp_path):
    root = tmp_path / "faces"
    write_fer2013(root / "fer2013.csv", n_per_split=8)
    overrides = ["data=fer2013", f"data.root={root}", "model=resnet20", "debug=fast_dev_run"]
    metrics = train(make_cfg([*overrides, "data.batch_size=4"]))
    assert metrics["global_step"] == 1
    assert 0.0 <= metrics["test/acc"] <= 1.0 and torch.isfinite(torch.tensor(metrics["test/loss"]))
