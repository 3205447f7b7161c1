"""Callbacks that tests add to real runs with ``+callbacks.NAME._target_=probes.CLASS``."""

import os
import signal

import lightning.pytorch as pl


class SigtermInValidation(pl.Callback):
    """Sends this process SIGTERM when the first epoch's validation starts (not the sanity
    check): the moment between a training batch's end and the next one."""

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.current_epoch == 0:
            os.kill(os.getpid(), signal.SIGTERM)
