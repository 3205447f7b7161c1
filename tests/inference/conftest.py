"""A short segmentation run that the predict, eval and CRF tests of this folder share."""

import pytest
from hydra.core.global_hydra import GlobalHydra

from cnnlab.cli.train import train

from composing import compose_run, tiny_segmentation


@pytest.fixture(scope="session")
def shapes_checkpoint(tmp_path_factory):
    """last.ckpt of one short epoch of FCN-32s on a ResNet-20 trunk, 32x32 shapes pictures. The
    tests only read it (one that needs another checkpoint writes a changed copy)."""
    run_dir = tmp_path_factory.mktemp("train")
    overrides = [
        *tiny_segmentation(32),
        "model=fcn32s",
        "model/backbone=resnet20",
    ]
    train(compose_run(overrides, "train", run_dir, run_dir / "data"))
    GlobalHydra.instance().clear()
    return run_dir / "checkpoints" / "last.ckpt"
