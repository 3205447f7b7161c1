"""YOLO through cnnlab-train, resume, cnnlab-eval and cnnlab-predict on tiny data: the bundled
shapes and a YOLO text folder (which Faster R-CNN reads too)."""

import json

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.cli.eval import evaluate
from cnnlab.cli.predict import predict
from cnnlab.cli.train import train
from cnnlab.data.shapes import draw_scene

from datafiles import TINY_SHAPES, write_coco, write_voc, write_yolo_folder

SMALL_YOLO = [
    "model=yolo",
    "model.image_size=64",
    "model.grid=4",
    "model.head_convs=1",
    "model.head_channels=16",
    "model.fc_hidden=32",
]
TINY = [
    *TINY_SHAPES,
    *SMALL_YOLO,
]
PARTS = ("train/loss_coord", "train/loss_obj", "train/loss_noobj", "train/loss_class")


@pytest.mark.slow  # trains YOLO twice (one epoch, then resumed), evaluates and predicts
def test_train_resume_eval_predict(make_cfg, tmp_path):
    run = tmp_path / "run"
    first = [*TINY, "trainer.max_epochs=1", "logger=tensorboard", "trainer.log_every_n_steps=1"]
    metrics = train(make_cfg(first, run_dir=run))
    assert {"test/map", "test/map_50", "test/map_75", "train/loss", *PARTS} <= set(metrics)
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert set(PARTS) <= set(events.Tags()["scalars"])
    assert "val/predictions" in events.Tags()["images"]

    last = run / "checkpoints" / "last.ckpt"
    resumed = train(make_cfg([f"ckpt_path={last}", "trainer.max_epochs=2"], run_dir=tmp_path / "b"))
    assert resumed["epoch"] == 2 and resumed["global_step"] == 2 * 2  # 4 pictures, 2 a batch

    best = sorted((run / "checkpoints").glob("best-epoch000-map*.ckpt"))
    assert best, list((run / "checkpoints").iterdir())
    again = evaluate(make_cfg([f"ckpt_path={best[0]}"], "eval", run_dir=tmp_path / "eval"))
    assert again["test/map"] == pytest.approx(metrics["test/map"], abs=1e-4)

    picture = tmp_path / "wide.png"  # not square: letterboxed, then mapped back
    Image.fromarray(draw_scene(0, "test", 0, size=64).image).resize((96, 64)).save(picture)
    overrides = [f"ckpt_path={last}", f"input={picture}", "predict.score_threshold=0.0"]
    out = predict(make_cfg(overrides, "predict", tmp_path / "p"))
    detections = json.loads((out / "detections.json").read_text())
    assert detections  # a threshold of 0 keeps what YOLO's own threshold let through
    for d in detections:
        assert set(d) == {"image_id", "file_name", "category_id", "category_name", "bbox", "score"}
        x, y, w, h = d["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 96.01 and y + h <= 64.01
        assert d["category_name"] in ("circle", "square", "triangle")
    assert (out / "wide.png").is_file()


FASTER_RCNN = [
    "model=fasterrcnn",
    "model.min_size=64",
    "model.max_size=64",
    "model.out_channels=32",
]
WRITERS = {"yolo_folder": write_yolo_folder, "coco": write_coco, "voc_detection": write_voc}


@pytest.mark.slow  # one epoch on each file format
@pytest.mark.parametrize(
    ("data", "model"),
    [("yolo_folder", SMALL_YOLO), ("coco", SMALL_YOLO), ("voc_detection", SMALL_YOLO),
     ("yolo_folder", FASTER_RCNN)],
)  # fmt: skip
def test_detectors_train_on_every_file_format(make_cfg, tmp_path, data, model):
    root = tmp_path / data
    WRITERS[data](root)
    cfg = [f"data={data}", f"data.root={root}", "data.image_size=64", "data.num_workers=0",
           "data.batch_size=2", "trainer.max_epochs=1", "logger=none"]  # fmt: skip
    metrics = train(make_cfg([*cfg, *model], run_dir=tmp_path / "run"))
    assert {"test/map", "test/map_50", "train/loss"} <= set(metrics)
