"""Shared fixtures: compose the real config tree in-process, with a run folder in tmp_path."""

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict, read_write

from cnnlab.cli.app import config_dir


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg(overrides, config_name="train", run_dir=None)``: a composed config whose run
    folder is ``run_dir`` (default ``tmp_path/run``), with HydraConfig set as a real run has it."""

    def make(
        overrides: list[str] | None = None,
        config_name: str = "train",
        run_dir: Path | None = None,
    ) -> DictConfig:
        run_dir = run_dir or tmp_path / "run"
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(
                config_name,
                overrides=[*(overrides or []), f"hydra.run.dir={run_dir}"],
                return_hydra_config=True,
            )
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.runtime.output_dir = str(run_dir)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.data_dir = str(tmp_path / "data")
            del cfg["hydra"]
        run_dir.mkdir(parents=True, exist_ok=True)
        return cfg

    yield make
    GlobalHydra.instance().clear()
