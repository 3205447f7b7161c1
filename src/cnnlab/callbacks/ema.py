"""An exponential moving average of the weights (``recipe.ema_decay``), on Lightning's
WeightAveraging callback.

After every ``every`` optimizer steps the averaged copy moves toward the trained weights:

    ema <- d * ema + (1 - d) * w,    d = min(decay, (1 + n) / (10 + n))

where n counts the averaging updates made before this one. The warm-up term keeps d small at
first, so that a short run's average is not dominated by its random start (with decay 0.999 and
no warm-up, the first thousand steps would still weigh the initial weights). The first update
copies the weights. BatchNorm's running statistics are not averaged: they are copied from the
trained network after each update, since they already are running averages.

Lightning's WeightAveraging does the rest: validation runs on the averaged weights, a
checkpoint's ``state_dict`` holds them (the trained weights go under ``current_model_state``,
so a resumed run continues both), and at the end of training they replace the trained ones,
so the test, ``cnnlab-eval`` and ``cnnlab-predict`` use them.
"""

import torch
from lightning.pytorch.callbacks import WeightAveraging


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay used for the update after ``updates`` earlier ones (warm-up included)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class EMA(WeightAveraging):
    """Exponential moving average of the parameters, updated every ``every`` steps."""

    def __init__(self, decay: float = 0.999, every: int = 1) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"recipe.ema_decay must be between 0 and 1, got {decay}.")
        if every < 1:
            raise ValueError(f"recipe.ema_every must be 1 or more, got {every}.")
        super().__init__(use_buffers=False, avg_fn=self._average)
        self.decay = decay
        self.every = every
        self._updates = 0  # update_parameters calls so far, the first of them a copy

    def _average(
        self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor
    ) -> torch.Tensor:
        # Called once per tensor in an update; the count comes from Python (reading
        # num_averaged, a device tensor, would wait for the GPU at every parameter).
        d = ema_decay_at(self.decay, self._updates - 1)  # the first update was the copy
        return averaged + (current - averaged) * (1.0 - d)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None and step_idx % self.every == 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        before = self._latest_update_step
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._latest_update_step != before:  # an update was made: count it, copy the buffers
            self._updates += 1
            average = self._average_model.module
            for mine, theirs in zip(average.buffers(), pl_module.buffers(), strict=True):
                mine.copy_(theirs)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        """Resuming a fit restores both the average and the trained weights (Lightning's way).
        Testing a checkpoint after fit (``trainer.test(ckpt_path=best)``) keeps its
        ``state_dict``, the average: Lightning's callback would put the trained weights back."""
        if trainer.state.fn == "fit":
            super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "updates": self._updates}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._updates = int(state_dict.get("updates", 0))
