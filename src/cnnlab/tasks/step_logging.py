"""Logging that costs little per step, shared by every task's LightningModule.

Each ``self.log`` call costs Lightning a fraction of a millisecond of Python (it looks the key
up, moves its store to the value's device and updates a running reduction). On a small network
that is a real share of a step. So:

- per-step values (``train/loss``, ``lr``, ...) are handed over only on the steps where Lightning
  writes them (every ``trainer.log_every_n_steps``) and on the epoch's last step (what the
  epoch's summary line and metrics.json show), not on every step;
- epoch values come from torchmetrics objects that the step updates directly; Lightning is given
  the object once per epoch and computes, synchronises (DDP) and resets it at the epoch's end.
"""

import torch
from torchmetrics import Metric


class StepLoggingMixin:
    """For a LightningModule: ``log_train_step`` and ``log_epoch_metric``."""

    def log_train_step(
        self,
        values: dict[str, torch.Tensor],
        batch_idx: int,
        prog_bar: str = "train/loss",
        batch_size: int | None = None,
    ) -> None:
        """``values`` and ``lr`` (the first group's rate: the head's when the backbone has its own),
        on the steps that reach the loggers and the epoch's last; ``prog_bar`` names the value
        the progress bar shows."""
        if self._trainer is None:  # a step called by hand, outside a Trainer
            return
        last = batch_idx + 1 == self.trainer.num_training_batches
        if not (last or self._writes_step_logs()):
            return
        for name, value in values.items():
            self.log(
                name, value, on_step=True, on_epoch=False, prog_bar=name == prog_bar,
                batch_size=batch_size,
            )  # fmt: skip
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)

    def _writes_step_logs(self) -> bool:
        connector = getattr(self.trainer, "_logger_connector", None)
        return connector is None or bool(connector.should_update_logs)

    def log_epoch_metric(self, name: str, metric: Metric, batch_idx: int, **kwargs) -> None:
        """Hand ``metric`` (updated by the caller on every batch) to Lightning on the first batch
        this loop runs, whether an epoch starts at batch 0 or a resumed one in its middle."""
        last = self.__dict__.setdefault("_last_batch_logged", {})
        if name not in last or batch_idx <= last[name]:
            self.log(name, metric, on_step=False, on_epoch=True, **kwargs)
        last[name] = batch_idx
