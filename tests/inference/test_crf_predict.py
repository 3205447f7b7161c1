"""The fully connected CRF in cnnlab-predict (predict.crf=true) and cnnlab-eval (model.crf=true):
stand-in networks whose scores miss a colour edge that the CRF finds, the switch refused on a
classification run, and (slow) a short shapes FCN-32s run evaluated and predicted through the
command-line functions, a checkpoint written before the CRF existed included."""

import json
from types import SimpleNamespace as Settings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnlab.cli.eval import evaluate
from cnnlab.cli.predict import predict
from cnnlab.cli.train import train
from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, SegmentationTransform
from cnnlab.errors import UserError
from cnnlab.factory.build import build_crf
from cnnlab.factory.restore import restore
from cnnlab.inference.files import read_image
from cnnlab.inference.segmentation import FADED, segment_images
from cnnlab.models.crf import CRFSettings
from cnnlab.tasks.segmentation import SegmentationModule
from cnnlab.viz.masks import colorize

HEIGHT, WIDTH = 30, 40
LEFT, RIGHT = (200, 60, 50), (40, 80, 210)  # the picture's two halves, classes 1 and 2


def halves_picture() -> Image.Image:
    """A 40x30 RGB picture: its left half one colour, its right half another."""
    pixels = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    pixels[:, : WIDTH // 2], pixels[:, WIDTH // 2 :] = LEFT, RIGHT
    return Image.fromarray(pixels)


def halves_truth() -> torch.Tensor:
    truth = torch.ones(HEIGHT, WIDTH, dtype=torch.int64)
    truth[:, WIDTH // 2 :] = 2
    return truth


class MissedEdge(nn.Module):
    """Scores (3 classes, logit 1 for the class said) that put the edge between classes 1 and 2
    six columns right of the picture's own, whatever the input's size."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        scores = torch.zeros(x.shape[0], 3, *x.shape[2:])
        edge = x.shape[-1] // 2 + 6
        scores[:, 1, :, :edge] = 1
        scores[:, 2, :, edge:] = 1
        return scores


class StandInData:
    """What a predictor asks of a datamodule: its eval transform and number of classes."""

    num_classes = 3

    def transforms(self, train: bool):
        return SegmentationTransform(None, train=False)


def test_predict_writes_the_refined_mask_and_the_change(tmp_path):
    halves_picture().save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    images = [(tmp_path / "a.png", read_image(tmp_path / "a.png"))]
    rows = segment_images(
        MissedEdge(), images, out, StandInData(), None, Settings(draw=True), CRFSettings()
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png",
        "a_crf_change.png",
        "a_overlay.png",
        "masks.json",
    ]
    with Image.open(out / "a.png") as written:
        mask = torch.from_numpy(np.asarray(written).astype(np.int64))
    truth = halves_truth()
    assert (mask == truth).float().mean() >= 0.98  # the edge moved to the colours' edge
    plain = torch.ones(HEIGHT, WIDTH, dtype=torch.int64)
    plain[:, WIDTH // 2 + 6 :] = 2  # what the network said
    changed = mask != plain
    assert rows[0]["crf_changed_pixels"] == int(changed.sum()) >= 0.9 * 6 * HEIGHT
    assert json.loads((out / "masks.json").read_text()) == rows

    with Image.open(out / "a_crf_change.png") as drawn:
        assert drawn.mode == "RGB" and drawn.size == (WIDTH, HEIGHT)
        change = torch.from_numpy(np.array(drawn)).permute(2, 0, 1)
    assert torch.equal(change[:, changed], colorize(mask)[:, changed])  # the new class's colour
    scale, offset = FADED
    faded = torch.tensor(LEFT, dtype=torch.float).mul(scale).add(offset).round()
    assert torch.equal(change[:, 0, 0].float(), faded)  # an unchanged pixel: the picture, faded


def test_without_draw_the_change_is_still_drawn_and_names_stay_unique(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "a_crf_change.png"]
    for path in paths:
        halves_picture().save(path)
    out = tmp_path / "out"
    out.mkdir()
    images = [(p, read_image(p)) for p in paths]
    rows = segment_images(
        MissedEdge(), images, out, StandInData(), None, Settings(draw=False), CRFSettings()
    )
    assert [r["mask"] for r in rows] == [str(out / "a.png"), str(out / "a_crf_change.png")]
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png",
        "a_crf_change.png",
        "a_crf_change_2.png",
        "a_crf_change_crf_change.png",
        "masks.json",
    ]


class NoisyScores(nn.Module):
    """Scores for 3 classes that say the true class on about 70% of the pixels (logit 0.4) and
    another at random elsewhere: the same for every image of the batch."""

    def __init__(self, truth: torch.Tensor) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        wrong = torch.rand(truth.shape, generator=gen) < 0.3
        said = torch.where(wrong, 3 - truth, truth)  # 1 <-> 2
        scores = torch.zeros(1, 3, *truth.shape)
        scores.scatter_(1, said[None, None], 0.4)
        self.scores = nn.Parameter(scores)

    def forward(self, x):
        return self.scores.expand(x.shape[0], -1, -1, -1)


def normalised_halves(count: int) -> torch.Tensor:
    """``count`` copies of the halves picture, normalised as a segmentation batch is."""
    pixels = torch.from_numpy(np.asarray(halves_picture())).permute(2, 0, 1).float() / 255
    mean, std = (
        torch.tensor(IMAGENET_MEAN)[:, None, None],
        torch.tensor(IMAGENET_STD)[:, None, None],
    )
    return ((pixels - mean) / std).expand(count, -1, -1, -1).contiguous()


def test_eval_metrics_come_from_the_refined_masks_and_the_loss_stays():
    truth = halves_truth()
    loader = DataLoader(TensorDataset(normalised_halves(3), truth.expand(3, -1, -1)), batch_size=2)
    logged = {}
    for crf in (None, CRFSettings()):
        module = SegmentationModule(NoisyScores(truth), optimizer=None, num_classes=3, crf=crf)
        trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
        logged[crf is not None] = trainer.test(module, loader, verbose=False)[0]
    assert logged[False]["test/pixel_acc"] < 0.8
    assert logged[True]["test/pixel_acc"] >= 0.98
    assert logged[True]["test/miou"] > logged[False]["test/miou"]
    assert logged[True]["test/loss"] == pytest.approx(logged[False]["test/loss"])


def test_the_crf_on_a_classification_run_is_refused(make_cfg):
    with pytest.raises(UserError, match="model.crf=true refines segmentation.*classification"):
        train(make_cfg(["model.crf=true", "debug=fast_dev_run", "logger=none"]))
    cfg = make_cfg(["predict.crf=true", "ckpt_path=x.ckpt", "input=x.png"], "predict")
    with pytest.raises(UserError, match="predict.crf=true refines segmentation"):
        build_crf(cfg, "classification", "predict.crf")
    assert build_crf(make_cfg(["crf.bi_w=5"]), "segmentation") == CRFSettings(bi_w=5)


def without_crf_keys(checkpoint_path, out_path):
    """A copy of the checkpoint whose stored config lacks model.crf and the crf node, as one
    written before the CRF existed."""
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    stored = checkpoint["cnnlab_config"]
    del stored["model"]["crf"], stored["crf"]
    torch.save(checkpoint, out_path)
    return out_path


@pytest.mark.slow
def test_eval_with_the_crf_and_an_old_checkpoint(shapes_checkpoint, make_cfg, tmp_path):
    old = without_crf_keys(shapes_checkpoint, tmp_path / "old.ckpt")
    runs = {
        "plain": [f"ckpt_path={shapes_checkpoint}"],
        "crf": [f"ckpt_path={shapes_checkpoint}", "model.crf=true"],
        "old": [f"ckpt_path={old}"],
        "old_crf": [f"ckpt_path={old}", "model.crf=true", "crf.iterations=5"],
    }
    metrics = {}
    for name, overrides in runs.items():
        metrics[name] = evaluate(make_cfg(overrides, "eval", tmp_path / name))
        for key in ("test/miou", "test/pixel_acc", *(f"test/iou_{k}" for k in range(4))):
            assert 0 <= metrics[name][key] <= 1, (name, key)
        stored = json.loads((tmp_path / name / "metrics.json").read_text())
        assert stored["test/miou"] == pytest.approx(metrics[name]["test/miou"])
    for name in ("crf", "old", "old_crf"):  # the CRF leaves the network and its loss alone
        assert metrics[name]["test/loss"] == pytest.approx(metrics["plain"]["test/loss"])
    assert metrics["old"]["test/miou"] == pytest.approx(metrics["plain"]["test/miou"])
    cfg = make_cfg([f"ckpt_path={old}"], "eval", tmp_path / "restored")
    overrides = {"model.crf": True, "crf.iterations": 5}
    assert restore(old, cfg, overrides).module.crf == CRFSettings(iterations=5)
    assert restore(old, cfg).module.crf is None


@pytest.mark.slow
def test_predict_with_the_crf_end_to_end(shapes_checkpoint, make_cfg, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(folder / "odd.png")
    halves_picture().save(folder / "halves.png")
    masks = {}
    for crf in ("false", "true"):
        cfg = make_cfg(
            [f"ckpt_path={shapes_checkpoint}", f"input={folder}", f"predict.crf={crf}"],
            "predict",
            tmp_path / crf,
        )
        out = predict(cfg)
        rows = {row["file"]: row for row in json.loads((out / "masks.json").read_text())}
        for name in ("halves", "odd"):
            with Image.open(out / f"{name}.png") as mask:
                masks[crf, name] = np.asarray(mask)
            if crf == "true":
                changed = masks["true", name] != masks["false", name]
                assert rows[str(folder / f"{name}.png")]["crf_changed_pixels"] == changed.sum()
                with Image.open(out / f"{name}_crf_change.png") as drawn:
                    assert drawn.size == masks[crf, name].shape[::-1]
                    colours = np.asarray(drawn)[changed]
                expected = colorize(
                    torch.from_numpy(masks[crf, name][changed].astype(np.int64))[None]
                )
                assert (colours == expected[:, 0].T.numpy()).all()
            else:
                assert "crf_changed_pixels" not in rows[str(folder / f"{name}.png")]
                assert not (out / f"{name}_crf_change.png").exists()
