"""Early stopping: Lightning's EarlyStopping on the task's metric, off unless a patience is set.

``callbacks.early_stopping.patience=N`` stops training once the monitored metric (val/acc,
val/map, val/miou: the one the best checkpoint is chosen by) has not improved by more than
``min_delta`` for N validation epochs in a row. The log says at which epoch and why;
metrics.json gets ``stopped_early`` (true or false) beside ``epoch`` (the epochs trained).

A run that stopped early can be resumed to go further (``ckpt_path=last`` with a larger
``patience``, or ``callbacks.early_stopping.patience=null`` to train to ``max_epochs``): the
checkpoint's count of epochs without improvement and its best value carry over, but the
patience is the command line's, not the one stored with the run, and the earlier stop is
forgotten.
"""

import logging

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

log = logging.getLogger("cnnlab")


class StopEarly(EarlyStopping):
    """EarlyStopping that keeps the configured patience over a resumed run's and writes one
    line to the log (train.log) when it stops."""

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: float = 0.0) -> None:
        super().__init__(monitor=monitor, mode=mode, patience=patience, min_delta=min_delta,
                         verbose=False)  # fmt: skip
        self.min_improvement = abs(min_delta)

    def load_state_dict(self, state_dict: dict) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience  # this command's, not the stored run's
        self.stopped_epoch = 0  # a stop of the earlier run is not this run's
        self.stopping_reason, self.stopping_reason_message = EarlyStoppingReason.NOT_STOPPED, None

    @property
    def stopped(self) -> bool:
        return self.stopping_reason != EarlyStoppingReason.NOT_STOPPED

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        was = self.stopped
        super().on_train_epoch_end(trainer, pl_module)
        self._announce(trainer, was)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        was = self.stopped
        super().on_validation_end(trainer, pl_module)
        self._announce(trainer, was)

    def _announce(self, trainer: pl.Trainer, was_stopped: bool) -> None:
        if was_stopped or not self.stopped or not trainer.is_global_zero:
            return
        epoch, last = self.stopped_epoch + 1, trainer.max_epochs
        if self.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
            why = (
                f"{self.monitor} has not improved by more than {self.min_improvement:g} for "
                f"{self.wait_count} validation epochs (best {float(self.best_score):.4f})"
            )
        else:
            why = self.stopping_reason_message or str(self.stopping_reason.value)
        log.info("Stopped early after epoch %d of %s: %s.", epoch, last, why)


def early_stopping(
    monitor: str, mode: str, patience: int | None = None, min_delta: float = 0.0
) -> list[StopEarly]:
    """The callback when ``patience`` is set (a whole number of 1 or more), else none."""
    if patience is None:
        return []
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        from cnnlab.errors import UserError

        raise UserError(
            f"callbacks.early_stopping.patience={patience}: give a whole number of validation "
            "epochs (1 or more), or null to train to trainer.max_epochs."
        )
    return [StopEarly(monitor, mode, patience, min_delta)]


def stopped_early(trainer: pl.Trainer) -> bool | None:
    """Whether the trainer's early stopping ended the fit; None when it had none."""
    found = [cb for cb in trainer.callbacks if isinstance(cb, StopEarly)]
    return found[0].stopped if found else None
