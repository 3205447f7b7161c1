"""Shared fixtures: compose the real config tree in-process, with a run folder in tmp_path."""

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from cnnlab.factory.configs import register_resolvers

from composing import compose_run

register_resolvers()  # the configs' ${task_monitor:...}, as every cnnlab command registers them


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg(overrides, config_name="train", run_dir=None)``: a composed config whose run
    folder is ``run_dir`` (default ``tmp_path/run``), with HydraConfig set as a real run has it."""

    def make(
        overrides: list[str] | None = None,
        config_name: str = "train",
        run_dir: Path | None = None,
    ) -> DictConfig:
        return compose_run(overrides, config_name, run_dir or tmp_path / "run", tmp_path / "data")

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory):
    """last.ckpt of a one-epoch digits LeNet (composed like cnnlab-train would), shared by the
    tests that only read it (predict, export)."""
    from cnnlab.cli.train import train

    run_dir = tmp_path_factory.mktemp("train")
    overrides = ["trainer.max_epochs=1", "data.batch_size=64", "logger=none"]
    cfg = compose_run(overrides, "train", run_dir, run_dir / "data")
    train(cfg)
    GlobalHydra.instance().clear()
    return run_dir / "checkpoints" / "last.ckpt"
