"""The config of a run that made a checkpoint, with what the user typed now on top."""

from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cnnlab.callbacks.run_config import CONFIG_KEY
from cnnlab.errors import UserError

# Keys that belong to the run being started, never to the run that wrote the checkpoint.
_THIS_RUN = ("paths", "task_name", "ckpt_path")


def load_checkpoint(path: str) -> dict:
    """``torch.load`` with ``weights_only=True``; a missing or foreign file is a UserError."""
    if not Path(path).is_file():
        raise UserError(
            f"No checkpoint at {path}. Give ckpt_path=RUN_DIR/checkpoints/last.ckpt "
            "(or the best-*.ckpt beside it) of a finished or interrupted cnnlab-train run."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"Could not read the checkpoint {path}: {e}") from e


def epochs_trained(checkpoint: dict) -> int:
    """Epochs whose training batches the checkpoint has seen (its ``epoch`` is the 0-based index
    of the epoch it was saved in)."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(checkpoint["epoch"]) + 1


def user_overrides() -> list[str]:
    """Dotted keys the user set on the command line (``a.b=1``, ``+a.c=2``, ``group=name``)."""
    keys = []
    for item in HydraConfig.get().overrides.task:
        key = item.split("=", 1)[0].lstrip("+")
        if not key.startswith(("~", "hydra.")) and "=" in item:
            keys.append(key)
    return keys


def config_from_checkpoint(cfg: DictConfig, checkpoint: dict) -> DictConfig:
    """The checkpoint's stored config, with this run's paths and the user's overrides applied."""
    stored = checkpoint.get(CONFIG_KEY)
    if stored is None:
        raise UserError(
            f"{cfg.ckpt_path} holds no cnnlab config (key {CONFIG_KEY!r}): it was not written by "
            "cnnlab-train. Train with cnnlab-train, or load plain weights through fine-tuning."
        )
    merged = OmegaConf.create(stored)
    for key in _THIS_RUN:
        merged[key] = cfg[key]
    for key in user_overrides():
        if key.split(".")[0] not in _THIS_RUN:
            OmegaConf.update(merged, key, OmegaConf.select(cfg, key), merge=False, force_add=True)
    return merged


def load_module_weights(module, checkpoint: dict, cfg: DictConfig) -> None:
    """Put the checkpoint's weights into the rebuilt module, or say plainly that they do not fit."""
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as e:  # names and shapes of the mismatched tensors
        raise UserError(
            f"The weights in {cfg.ckpt_path} do not fit the model {cfg.model._target_}: "
            f"{' '.join(str(e).split())[:400]} ... Leave model= off to use the checkpoint's own "
            "model."
        ) from e
