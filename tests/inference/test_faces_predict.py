"""cnnlab-predict predict.faces=true: photos in, one row per face out, with a checkpoint trained
on a FER-2013-format CSV that the test writes (LeNet-5 at 32x32, as data.image_size=32 gives)."""

import json

import pytest
import skimage.data
import torch
from PIL import Image

from cnnlab.cli.predict import predict
from cnnlab.cli.train import train
from cnnlab.data.fer2013 import EMOTIONS
from cnnlab.errors import UserError
from cnnlab.models import get_model

from composing import compose_run
from datafiles import write_fer2013


@pytest.fixture(scope="module")
def fer_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer")
    write_fer2013(root / "fer2013.csv", n_per_split=14)
    run_dir = root / "run"
    overrides = [
        "data=fer2013",
        f"data.root={root}",
        "data.image_size=32",  # FER's 48x48 faces resized for LeNet-5
        "model=lenet",
        "trainer.max_epochs=1",
        "logger=none",
    ]
    train(compose_run(overrides, "train", run_dir, root / "data"))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage.data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(skimage.data.coffee()).save(folder / "coffee.jpg")
    return folder


def test_each_face_gets_a_row_and_a_drawing(fer_checkpoint, photos, make_cfg, tmp_path, caplog):
    cfg = make_cfg(
        [f"ckpt_path={fer_checkpoint}", f"input={photos}", "predict.faces=true"],
        "predict",
        tmp_path / "p",
    )
    with caplog.at_level("INFO", logger="cnnlab"):
        out = predict(cfg)
    (row,) = json.loads((out / "faces.json").read_text())  # the coffee cup has no face
    assert "coffee.jpg: no face found" in caplog.text
    assert row["file"].endswith("astronaut.png")
    x1, y1, x2, y2 = row["box"]
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 190
    assert abs(row["angle"]) < 6
    assert len(row["probs"]) == len(EMOTIONS) and sum(row["probs"]) == pytest.approx(1, abs=1e-3)
    assert row["label"] == max(range(7), key=row["probs"].__getitem__)
    assert row["class_name"] == EMOTIONS[row["label"]]
    crop = Image.open(out / "astronaut_face1.png")
    assert crop.size == (32, 32) and crop.mode == "L"  # what the grey 32x32 LeNet saw
    assert Image.open(out / "astronaut.png").size == (512, 512)  # the photo, boxes drawn


def test_faces_are_refused_for_a_segmentation_checkpoint(shapes_checkpoint, photos, make_cfg):
    cfg = make_cfg(
        [f"ckpt_path={shapes_checkpoint}", f"input={photos}", "predict.faces=true"], "predict"
    )
    with pytest.raises(UserError, match="predict.faces=true .* segmentation run"):
        predict(cfg)


@pytest.mark.parametrize("name", ["resnet18", "resnet20"])
def test_the_resnets_take_fer_sized_faces(name):
    net = get_model(name, num_classes=len(EMOTIONS), in_channels=1)
    assert net(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
