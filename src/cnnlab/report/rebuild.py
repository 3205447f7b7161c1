"""A run's trained module and datamodule, rebuilt from a checkpoint and the config stored in it.

The same recipe as cnnlab-eval (cli/eval.py), without Hydra: the report runs outside a Hydra
app, so the run's own folder stands in for ``${hydra:runtime.output_dir}``.
"""

from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from cnnlab.errors import UserError


@dataclass
class Rebuilt:
    task: str
    module: pl.LightningModule
    datamodule: pl.LightningDataModule
    cfg: DictConfig


def rebuild(checkpoint_path: Path, run_dir: Path) -> Rebuilt:
    """The module with the checkpoint's weights (on the CPU, in eval mode) and its datamodule
    set up for testing, loading in the main process."""
    from cnnlab.callbacks.run_config import CONFIG_KEY
    from cnnlab.cli import build, resolvers
    from cnnlab.cli.checkpoint_config import load_checkpoint, load_module_weights

    resolvers.register()
    checkpoint = load_checkpoint(str(checkpoint_path))
    stored = checkpoint.get(CONFIG_KEY)
    if stored is None:
        raise UserError(
            f"{checkpoint_path} holds no cnnlab config (key {CONFIG_KEY!r}), so the model cannot "
            "be rebuilt. Report on a run that cnnlab-train wrote."
        )
    cfg = OmegaConf.create(stored)
    cfg.paths.output_dir = str(run_dir)
    cfg.ckpt_path = str(checkpoint_path)
    cfg.data.num_workers = 0  # a handful of test batches: worker start-up would cost more
    task, datamodule = build.build_datamodule(cfg.data)
    module = build.build_module(cfg, task, datamodule, load_weights=False)
    load_module_weights(module, checkpoint, cfg)
    datamodule.setup("test")
    return Rebuilt(task, module.cpu().eval(), datamodule, cfg)
