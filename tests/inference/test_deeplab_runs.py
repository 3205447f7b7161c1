"""Each DeepLab trains a step, evaluates and predicts through the commands (tiny shapes pictures,
no network). The paper's FCN on VGG, whose fc6 alone has 102M weights, is held to its forward
pass in tests/models/test_fcn_paper.py; the FCN commands are tested on ResNet trunks."""

import json

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from cnnlab.cli.eval import evaluate
from cnnlab.cli.predict import predict
from cnnlab.cli.train import train

from composing import compose_run, tiny_segmentation

MODELS = {  # model, backbone and the settings that keep it small
    "deeplab_v1": ["model=deeplab_v1", "model/backbone=vgg11", "model.channels=32", "model.rate=2"],
    "deeplab_v2": ["model=deeplab_v2", "model.rates=[1,2]"],
    "deeplab_v3": ["model=deeplab_v3", "model.rates=[1,2,3]", "model.channels=16"],
    "deeplab_v3plus": ["model=deeplab_v3plus", "model.rates=[1,2]", "model.channels=16"],
}


@pytest.mark.slow  # one epoch of 4 pictures, then eval and predict: 4 to 8 s a model
@pytest.mark.parametrize("name", MODELS)
def test_train_eval_and_predict(name, make_cfg, tmp_path):
    run_dir = tmp_path / "train"
    overrides = [
        *tiny_segmentation(48),
        *MODELS[name],
    ]
    train(compose_run(overrides, "train", run_dir, run_dir / "data"))
    GlobalHydra.instance().clear()
    ckpt = run_dir / "checkpoints" / "last.ckpt"

    metrics = evaluate(make_cfg([f"ckpt_path={ckpt}"], "eval", tmp_path / "eval"))
    for key in ("test/miou", "test/pixel_acc", *(f"test/iou_{k}" for k in range(4))):
        assert 0 <= metrics[key] <= 1, key

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(folder / "odd.png")
    out = predict(make_cfg([f"ckpt_path={ckpt}", f"input={folder}"], "predict", tmp_path / "p"))
    with Image.open(out / "odd.png") as mask:
        assert mask.mode == "P" and mask.size == (53, 37)
        assert np.asarray(mask).max() < 4
    rows = json.loads((out / "masks.json").read_text())
    assert sum(rows[0]["pixels"].values()) == 37 * 53
