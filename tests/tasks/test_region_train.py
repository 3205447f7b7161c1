"""R-CNN and Fast R-CNN through cnnlab-train, resume, cnnlab-eval and cnnlab-predict on a tiny
shapes set, with Selective Search proposals computed once and read from the cache after."""

import json

import pytest
from PIL import Image

from cnnlab.cli.eval import evaluate
from cnnlab.cli.predict import predict
from cnnlab.cli.train import train
from cnnlab.data import proposals
from cnnlab.data.shapes import draw_scene

from datafiles import TINY_SHAPES

pytest.importorskip("cv2")

TINY = [
    *TINY_SHAPES,
    "model.proposals.max=100",
    "model.proposals.eval_max=50",
    "model.rois_per_image=16",
    "logger=none",
]
MODELS = {
    "rcnn": ["model=rcnn", "model/backbone=resnet20", "model.crop_size=16"],
    "fast_rcnn": ["model=fast_rcnn", "model.fc_hidden=64"],
}


@pytest.mark.slow  # trains twice (one epoch, then resumed), evaluates and predicts
@pytest.mark.parametrize("name", sorted(MODELS))
def test_train_resume_eval_predict(make_cfg, tmp_path, name):
    run = tmp_path / "run"
    metrics = train(make_cfg([*TINY, *MODELS[name], "trainer.max_epochs=1"], run_dir=run))
    expected = {"test/map", "test/map_50", "test/map_75", "test/ms_per_image",
                "val/proposal_recall_50", "val/proposal_recall_70",
                "train/loss", "train/loss_classifier", "train/loss_box_reg"}  # fmt: skip
    assert expected <= set(metrics)
    assert 0 < metrics["val/proposal_recall_70"] <= metrics["val/proposal_recall_50"] <= 1
    assert metrics["test/ms_per_image"] > 0
    cache = tmp_path / "data" / "proposals"
    files = sorted(cache.rglob("*.npy"))
    assert len(files) == 8  # 4 + 2 + 2 pictures, each searched once

    computed = proposals.counts["computed"]
    last = run / "checkpoints" / "last.ckpt"
    resumed = train(make_cfg([f"ckpt_path={last}", "trainer.max_epochs=2"], run_dir=tmp_path / "b"))
    assert resumed["epoch"] == 2 and resumed["global_step"] == 2 * 2
    again = evaluate(make_cfg([f"ckpt_path={last}"], "eval", run_dir=tmp_path / "eval"))
    assert set(again) >= {"test/map", "test/map_50"}
    assert proposals.counts["computed"] == computed  # the second run and eval read the cache
    assert sorted(cache.rglob("*.npy")) == files

    picture = tmp_path / "scene.png"
    Image.fromarray(draw_scene(0, "test", 0, size=64).image).save(picture)
    overrides = [f"ckpt_path={last}", f"input={picture}", "predict.score_threshold=0.0"]
    out = predict(make_cfg(overrides, "predict", tmp_path / "p"))
    for d in json.loads((out / "detections.json").read_text()):
        assert set(d) == {"image_id", "file_name", "category_id", "category_name", "bbox", "score"}
        assert d["category_name"] in ("circle", "square", "triangle")
    assert (out / "scene.png").is_file()
