"""Compose the real config tree in-process, as a cnnlab command would, for a given run folder."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict, read_write

from cnnlab.factory.configs import config_dir


def compose_run(
    overrides: list[str] | None, config_name: str, run_dir: Path, data_dir: Path
) -> DictConfig:
    """The composed config with ``run_dir`` as its run folder (HydraConfig set as a real run
    has it) and ``data_dir`` for downloads."""
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
        cfg.paths.data_dir = str(data_dir)
        del cfg["hydra"]
    run_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def tiny_segmentation(size: int) -> list[str]:
    """Overrides for a one-epoch segmentation run on 4/2/2 generated shapes pictures of
    ``size`` pixels, without a logger: the smallest real run of the segmentation task."""
    return [
        "data=shapes_segmentation",
        "data.num_train=4",
        "data.num_val=2",
        "data.num_test=2",
        f"data.image_size={size}",
        f"data.draw_size={size}",
        "data.batch_size=2",
        "logger=none",
        "trainer.max_epochs=1",
    ]
