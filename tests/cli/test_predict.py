"""cnnlab-predict in-process: a trained digits LeNet end to end, the detection writers with a
stand-in detector, and the input mistakes a user can make."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torch import nn

from cnnlab.cli.predict import predict
from cnnlab.errors import UserError
from cnnlab.inference.detection import detect_images
from cnnlab.inference.files import image_paths, read_image


def write_digits(folder, count: int = 4) -> list[int]:
    """The first ``count`` scikit-learn digits as 32x32 grey PNGs; their true labels."""
    digits = load_digits()
    folder.mkdir()
    for i in range(count):
        pixels = (digits.images[i] / 16 * 255).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).save(folder / f"d{i}.png")
    return [int(t) for t in digits.target[:count]]


def test_classification_end_to_end(digits_checkpoint, make_cfg, tmp_path):
    truth = write_digits(tmp_path / "digits")
    run_dir = tmp_path / "pred"
    cfg = make_cfg(
        [f"ckpt_path={digits_checkpoint}", f"input={tmp_path / 'digits'}"], "predict", run_dir
    )
    out = predict(cfg)
    assert out == run_dir / "predictions"
    rows = json.loads((out / "predictions.json").read_text())
    assert [r["file"] for r in rows] == [str(tmp_path / "digits" / f"d{i}.png") for i in range(4)]
    for row in rows:
        assert row["class_name"] == str(row["label"]) and 0 <= row["score"] <= 1
        assert len(row["top5"]) == 5 and row["top5"][0]["label"] == row["label"]
        assert row["top5"][0]["score"] >= row["top5"][1]["score"]
    assert sum(r["label"] == t for r, t in zip(rows, truth, strict=True)) >= 2
    assert sorted(p.name for p in out.iterdir()) == [
        "d0.png",
        "d1.png",
        "d2.png",
        "d3.png",
        "predictions.json",
    ]


def test_classification_takes_one_file_or_a_list(digits_checkpoint, make_cfg, tmp_path):
    write_digits(tmp_path / "digits", 2)
    one = tmp_path / "digits" / "d1.png"
    cfg = make_cfg(
        [f"ckpt_path={digits_checkpoint}", f"input=[{one},{one}]", "predict.draw=false"],
        "predict",
        tmp_path / "p",
    )
    rows = json.loads((predict(cfg) / "predictions.json").read_text())
    assert len(rows) == 2 and rows[0] == rows[1]
    assert not list((tmp_path / "p" / "predictions").glob("*.png"))


class StandInDetector(nn.Module):
    """Eval-mode answers of a torchvision detector, the same for every image."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, ...]] = []

    def forward(self, images):
        self.seen.extend(tuple(im.shape) for im in images)
        return [
            {
                "boxes": torch.tensor([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 5.0, 5.0]]),
                "labels": torch.tensor([2, 1]),
                "scores": torch.tensor([0.9, 0.2]),
            }
            for _ in images
        ]


def test_detection_writes_coco_results_and_drawings(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "sub" / "a.png"]
    paths[1].parent.mkdir()
    Image.new("RGB", (80, 70), "white").save(paths[0])
    Image.new("RGB", (64, 64), "white").save(paths[1])
    net = StandInDetector()
    out = tmp_path / "out"
    out.mkdir()
    images = [(p, read_image(p)) for p in paths]
    settings = SimpleNamespace(score_threshold=0.5, draw=True)
    detect_images(net, images, out, None, ["circle", "square"], settings)

    assert net.seen == [(3, 70, 80), (3, 64, 64)]  # each image whole, in its own pixels
    rows = json.loads((out / "detections.json").read_text())
    assert rows == [
        {
            "image_id": i,
            "file_name": str(p),
            "category_id": 2,
            "category_name": "square",
            "bbox": [10.0, 20.0, 40.0, 40.0],
            "score": 0.9,
        }
        for i, p in enumerate(paths)
    ]
    assert sorted(f.name for f in out.iterdir()) == ["a.png", "a_2.png", "detections.json"]
    drawn = np.asarray(Image.open(out / "a.png"))
    assert drawn.shape == (70, 80, 3)
    assert tuple(drawn[20, 30]) == (255, 0, 0)  # the kept box's top edge, in red
    assert tuple(drawn[2, 2]) == (255, 255, 255)  # the low-scoring box is not drawn


def test_input_mistakes_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="No image or folder at .*missing.png"):
        image_paths(str(tmp_path / "missing.png"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="folder .*empty holds no image files"):
        image_paths(str(tmp_path / "empty"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert image_paths([str(broken)]) == [broken]
    with pytest.raises(UserError, match="Could not read the image .*broken.png"):
        read_image(broken)


def test_missing_input_fails_before_anything_is_written(digits_checkpoint, make_cfg, tmp_path):
    cfg = make_cfg(
        [f"ckpt_path={digits_checkpoint}", f"input={tmp_path / 'nope'}"], "predict", tmp_path / "r"
    )
    with pytest.raises(UserError, match="nope"):
        predict(cfg)
    assert not (tmp_path / "r" / "predictions").exists()
