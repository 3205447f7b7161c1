"""Detection through cnnlab-train, cnnlab-eval and cnnlab-predict on a tiny shapes set; the
task check between data and model."""

import json

import pytest
from PIL import Image

from cnnlab.cli.eval import evaluate
from cnnlab.cli.predict import predict
from cnnlab.cli.train import train
from cnnlab.data.shapes import draw_scene
from cnnlab.errors import UserError

from datafiles import TINY_SHAPES

TINY = [
    *TINY_SHAPES,
    "model=fasterrcnn",
    "model.min_size=64",
    "model.max_size=64",
    "model.out_channels=32",
    "logger=none",
]


@pytest.mark.slow  # trains a detector, then evaluates and predicts with it
def test_train_eval_predict(make_cfg, tmp_path):
    run = tmp_path / "run"
    metrics = train(make_cfg([*TINY, "trainer.max_epochs=1"], run_dir=run))
    assert {"test/map", "test/map_50", "test/map_75", "train/loss"} <= set(metrics)
    best = sorted((run / "checkpoints").glob("best-epoch000-map*.ckpt"))
    assert best, list((run / "checkpoints").iterdir())
    again = evaluate(make_cfg([f"ckpt_path={best[0]}"], "eval", run_dir=tmp_path / "eval"))
    assert again["test/map"] == pytest.approx(metrics["test/map"], abs=1e-4)

    picture = tmp_path / "scene.png"
    Image.fromarray(draw_scene(0, "test", 0, size=64).image).save(picture)
    overrides = [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"input={picture}"]
    out = predict(make_cfg([*overrides, "predict.score_threshold=0.0"], "predict", tmp_path / "p"))
    detections = json.loads((out / "detections.json").read_text())
    assert isinstance(detections, list)
    for d in detections:
        assert len(d["bbox"]) == 4 and d["category_name"] in ("circle", "square", "triangle")
    assert (out / "scene.png").is_file()


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["data=digits", "model=fasterrcnn"], "lenet"),
        (["data=shapes_detection", "model=lenet"], "fasterrcnn"),
    ],
)
def test_a_model_of_another_task_is_refused_naming_those_that_fit(make_cfg, overrides, names):
    with pytest.raises(UserError, match=f"Models for .*{names}"):
        train(make_cfg([*overrides, "debug=fast_dev_run"]))


def test_finetune_strategies_are_for_classification(make_cfg):
    with pytest.raises(UserError, match="applies to classification"):
        train(make_cfg([*TINY, "finetune=full", "debug=fast_dev_run"]))
