"""Keeps the run's composed config inside every checkpoint, as plain dicts and lists."""

import lightning.pytorch as pl

CONFIG_KEY = "cnnlab_config"


class StoreConfig(pl.Callback):
    """Writes ``config`` (plain containers only, so ``torch.load(weights_only=True)`` can read it
    back) into each checkpoint under ``cnnlab_config``; cnnlab-eval and resume rebuild from it."""

    def __init__(self, config: dict) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config
