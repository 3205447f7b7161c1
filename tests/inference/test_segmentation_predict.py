"""cnnlab-predict and cnnlab-eval on a segmentation checkpoint: a short shapes FCN-32s run, then
masks of an odd-sized image in its own pixels, and the test metrics of the same checkpoint."""

import json
from types import SimpleNamespace as Settings

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.eval import evaluate
from cnnlab.cli.predict import predict
from cnnlab.data.transforms import SegmentationTransform
from cnnlab.inference.files import read_image
from cnnlab.inference.segmentation import predict_mask, segment_images

NAMES = ["background", "circle", "square", "triangle"]


def test_masks_come_back_in_the_inputs_own_pixels(shapes_checkpoint, make_cfg, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(folder / "odd.png")
    Image.new("L", (33, 20), 90).save(folder / "grey.png")  # read as RGB like every input
    cfg = make_cfg([f"ckpt_path={shapes_checkpoint}", f"input={folder}"], "predict", tmp_path / "p")
    out = predict(cfg)

    assert sorted(p.name for p in out.iterdir()) == [
        "grey.png",
        "grey_overlay.png",
        "masks.json",
        "odd.png",
        "odd_overlay.png",
    ]
    rows = json.loads((out / "masks.json").read_text())
    for row, (name, (width, height)) in zip(
        rows, [("grey", (33, 20)), ("odd", (70, 45))], strict=True
    ):
        with Image.open(out / f"{name}.png") as mask:
            assert mask.mode == "P" and mask.size == (width, height)
            ids = np.asarray(mask)
        with Image.open(out / f"{name}_overlay.png") as drawn:
            assert drawn.mode == "RGB" and drawn.size == (width, height)
        assert ids.max() < len(NAMES)
        assert row["file"] == str(folder / f"{name}.png") and row["mask"] == str(
            out / f"{name}.png"
        )
        assert (row["height"], row["width"]) == (height, width)
        assert list(row["pixels"]) == NAMES
        assert row["pixels"] == {n: int((ids == k).sum()) for k, n in enumerate(NAMES)}
        assert sum(row["fractions"].values()) == pytest.approx(1, abs=1e-4)


class Halves(torch.nn.Module):
    """Scores that say class 1 on the left half of its input and class 2 on the right."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        scores = torch.zeros(x.shape[0], 3, *x.shape[2:])
        half = x.shape[-1] // 2
        scores[:, 1, :, :half] = 1
        scores[:, 2, :, half:] = 1
        return scores, scores.flip(1)  # an auxiliary output, which prediction leaves out


def test_scores_are_resized_back_before_the_argmax():
    image = torch.zeros(3, 9, 30, dtype=torch.uint8)
    mask = predict_mask(Halves(), image, SegmentationTransform(16, train=False))
    assert mask.shape == (9, 30) and mask.dtype == torch.int64
    assert (mask[:, :15] == 1).all() and (mask[:, 15:] == 2).all()


class StandInData:
    """What a predictor asks of a datamodule: its eval transform and number of classes."""

    def __init__(self, transform, num_classes: int) -> None:
        self.transform, self.num_classes = transform, num_classes

    def transforms(self, train: bool):
        return self.transform


def test_rows_count_pixels_and_no_overlay_without_draw(tmp_path):
    Image.new("RGB", (40, 30), "white").save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    images = [(tmp_path / "a.png", read_image(tmp_path / "a.png"))]
    data = StandInData(SegmentationTransform(None, train=False), num_classes=3)
    rows = segment_images(Halves(), images, out, data, ["bg", "left"], Settings(draw=False))
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "masks.json"]
    assert json.loads((out / "masks.json").read_text()) == rows
    assert rows == [
        {
            "file": str(tmp_path / "a.png"),
            "mask": str(out / "a.png"),
            "height": 30,
            "width": 40,
            "pixels": {"bg": 0, "left": 600, "2": 600},  # a class without a name: its id
            "fractions": {"bg": 0.0, "left": 0.5, "2": 0.5},
        }
    ]


def test_overlay_names_never_overwrite_a_mask(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "a_overlay.png", tmp_path / "b" / "a.png"]
    paths[2].parent.mkdir()
    for path in paths:
        Image.new("RGB", (8, 6)).save(path)
    out = tmp_path / "out"
    out.mkdir()
    images = [(p, read_image(p)) for p in paths]
    data = StandInData(SegmentationTransform(None, False), num_classes=3)
    rows = segment_images(Halves(), images, out, data, None, Settings(draw=True))
    assert [r["mask"] for r in rows] == [str(out / f"{s}.png") for s in ("a", "a_overlay", "a_2")]
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png",
        "a_2.png",
        "a_overlay.png",
        "a_overlay_2.png",
        "a_overlay_3.png",
        "a_overlay_overlay.png",
        "masks.json",
    ]


def test_eval_tests_a_segmentation_checkpoint(shapes_checkpoint, make_cfg, tmp_path):
    run_dir = tmp_path / "eval"
    metrics = evaluate(make_cfg([f"ckpt_path={shapes_checkpoint}"], "eval", run_dir))
    for name in ("test/miou", "test/pixel_acc", *(f"test/iou_{k}" for k in range(4))):
        assert 0 <= metrics[name] <= 1, name
    assert metrics["epoch"] == 1
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert stored["test/miou"] == pytest.approx(metrics["test/miou"])
