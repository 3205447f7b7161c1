"""Restore a run from its checkpoint: the one way that a resumed cnnlab-train, cnnlab-eval,
cnnlab-predict and the report rebuild a trained model and its data.

The checkpoint holds the composed config of the run that wrote it (``StoreConfig``). A new
run (eval, predict, resume) keeps its own paths and task name and puts what the user typed now
on top; the report, which runs outside Hydra, uses the stored config as it is, in the folder of
the run that wrote it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from cnnlab.callbacks.run_config import CONFIG_KEY
from cnnlab.errors import UserError
from cnnlab.factory.checkpoint import epochs_trained, load_checkpoint, load_module_weights

# Keys that belong to the run being started, never to the run that wrote the checkpoint.
THIS_RUN = ("paths", "task_name", "ckpt_path")


@dataclass
class Restored:
    """A trained run rebuilt: its config, task, module (with the checkpoint's weights) and data."""

    cfg: DictConfig
    task: str
    module: pl.LightningModule
    datamodule: pl.LightningDataModule
    epochs: int  # epochs the checkpoint has trained
    global_step: int


def stored_config(checkpoint: dict, path: str) -> DictConfig:
    """The composed config stored in ``checkpoint`` (read from ``path``)."""
    stored = checkpoint.get(CONFIG_KEY)
    if stored is None:
        raise UserError(
            f"{path} holds no cnnlab config (key {CONFIG_KEY!r}): it was not written by "
            "cnnlab-train. Train with cnnlab-train, or load plain weights through fine-tuning."
        )
    return OmegaConf.create(stored)


def config_from_checkpoint(
    cfg: DictConfig, checkpoint: dict, overrides: Mapping[str, object] | None = None
) -> DictConfig:
    """The checkpoint's stored config, with this run's ``paths``, ``task_name`` and
    ``ckpt_path`` from ``cfg`` and the ``overrides`` (dotted key -> value) on top."""
    merged = stored_config(checkpoint, cfg.ckpt_path)
    for key in THIS_RUN:
        merged[key] = cfg[key]
    for key, value in (overrides or {}).items():
        if key.split(".")[0] not in THIS_RUN:
            OmegaConf.update(merged, key, value, merge=False, force_add=True)
    return merged


def restore(
    ckpt_path: str | Path,
    cfg: DictConfig | None = None,
    overrides: Mapping[str, object] | None = None,
    training: bool = False,
) -> Restored:
    """Rebuild the run that wrote ``ckpt_path``, its weights loaded (weights_only), with the
    random generators seeded from its ``seed`` before anything is built.

    ``cfg``: the config of the run doing the restoring (a resumed cnnlab-train, cnnlab-eval,
    cnnlab-predict), whose paths it keeps; None: the stored config alone, its
    ``paths.output_dir`` the folder of the run that wrote the checkpoint
    (``RUN_DIR/checkpoints/x.ckpt``). ``overrides`` go on top. ``training``: the datamodule
    takes the run's recipe (augmentation), as it did when the run was started.
    """
    from cnnlab.factory.build import build_datamodule, build_module
    from cnnlab.factory.configs import register_resolvers

    register_resolvers()
    path = str(ckpt_path)
    checkpoint = load_checkpoint(path)
    if cfg is None:
        cfg = stored_config(checkpoint, path)
        cfg.paths.output_dir = str(Path(path).resolve().parents[1])
        cfg.ckpt_path = path
    cfg = config_from_checkpoint(cfg, checkpoint, overrides)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    task, datamodule = build_datamodule(cfg.data, cfg.get("recipe") if training else None)
    module = build_module(cfg, task, datamodule, load_weights=False, training=training)
    load_module_weights(module, checkpoint, cfg)
    return Restored(
        cfg, task, module, datamodule, epochs_trained(checkpoint), int(checkpoint["global_step"])
    )
