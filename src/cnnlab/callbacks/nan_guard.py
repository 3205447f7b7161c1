"""What happens when the training loss becomes NaN or infinite.

``policy="stop"`` ends the run before that batch's update reaches the weights, with a message
naming the epoch, the step and the last good checkpoint. ``policy="skip"`` leaves that batch's
update out and trains on; after ``max_skipped`` skipped batches it stops as ``stop`` does.

A skipped update: the gradients are dropped (set to None) just before the optimizer step, and
torch's optimizers (and cnnlab's textbook ones) leave a parameter without a gradient as it is,
its optimizer state (Adam's moments and step count) included. The step still counts
(``global_step`` and a per-step learning-rate schedule move on by one).

Reading the loss back to the host makes the CPU wait for the device. On the CPU that costs
nothing, and the check is immediate. On a GPU, ``stop`` reads each step's verdict one step
later, while the next step is already queued, so the GPU never waits on the host: the run then
stops one step after the bad one (whose update did reach the weights) and names the bad step
and the last checkpoint saved before it. ``skip`` must know before the optimizer step, so it
waits for the device at every step.
"""

import logging
import math
from pathlib import Path

import lightning.pytorch as pl
import torch

from cnnlab.errors import UserError

log = logging.getLogger("cnnlab")

POLICIES = ("stop", "skip")


class NonFiniteLoss(UserError):
    """Training stopped on a NaN or infinite loss; the message names the last good checkpoint."""


class NanGuard(pl.Callback):
    """``policy`` "stop" or "skip" (see the module's text); ``max_skipped`` for "skip"."""

    def __init__(self, policy: str = "stop", max_skipped: int = 10) -> None:
        if policy not in POLICIES:
            raise UserError(
                f"nan_guard.policy={policy!r} is not a policy; choose stop or skip "
                "(or nan_guard=null for no guard)."
            )
        if isinstance(max_skipped, bool) or not isinstance(max_skipped, int) or max_skipped < 0:
            raise UserError(
                f"nan_guard.max_skipped={max_skipped!r} must be a whole number, 0 or more."
            )
        self.policy = policy
        self.max_skipped = max_skipped
        self.skipped = 0
        self._bad_loss: float | None = None
        self._pending: tuple[torch.Tensor, int, int] | None = None  # GPU: (loss, epoch, step)

    def state_dict(self) -> dict:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict) -> None:
        self.skipped = int(state_dict.get("skipped", 0))

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        value = loss.detach()
        if value.device.type != "cpu" and self.policy == "stop":
            self._read_pending(trainer)  # the previous step's verdict, one step late
            self._pending = (value.sum(), trainer.current_epoch, trainer.global_step)
            return
        total = float(value.sum()) if value.numel() != 1 else value.item()  # one host read
        if not math.isfinite(total):  # kept over accumulated batches until the step
            self._bad_loss = total

    def _read_pending(self, trainer) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not bool(torch.isfinite(pending[0])):
            epoch, step = pending[1] + 1, pending[2] + 1
            raise NonFiniteLoss(
                f"The training loss became {_name(float(pending[0]))} at epoch {epoch}, step "
                f"{step} (nan_guard.policy=stop; on a GPU the check reads each step one step "
                f"late, so that step's update reached the weights). {_last_good(trainer)} Try "
                "a lower optimizer.lr, gradient clipping (trainer.gradient_clip_val=1.0), or "
                "nan_guard.policy=skip to leave such batches out."
            )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._read_pending(trainer)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self._bad_loss is None:
            return
        bad, self._bad_loss = self._bad_loss, None
        where = f"epoch {trainer.current_epoch + 1}, step {trainer.global_step + 1}"
        if self.policy == "stop":
            raise NonFiniteLoss(
                f"The training loss became {_name(bad)} at {where} (nan_guard.policy=stop); "
                f"the weights of that step were not updated. {_last_good(trainer)} Try a lower "
                "optimizer.lr, gradient clipping (trainer.gradient_clip_val=1.0), or "
                "nan_guard.policy=skip to leave such batches out."
            )
        if self.skipped >= self.max_skipped:
            raise NonFiniteLoss(
                f"The training loss became {_name(bad)} at {where}, after {self.skipped} "
                f"batches skipped for a NaN or infinite loss (nan_guard.max_skipped="
                f"{self.max_skipped}): training stopped. {_last_good(trainer)} Try a lower "
                "optimizer.lr or gradient clipping (trainer.gradient_clip_val=1.0)."
            )
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None
        self.skipped += 1
        log.warning(
            "Training loss %s at %s: batch skipped, no update (%d of at most %d).",
            _name(bad),
            where,
            self.skipped,
            self.max_skipped,
        )

    def on_train_end(self, trainer, pl_module) -> None:
        self._read_pending(trainer)
        if self.skipped:
            log.warning(
                "%d training batches were skipped for a NaN or infinite loss.", self.skipped
            )


def _name(value: float) -> str:
    return "NaN" if math.isnan(value) else ("+inf" if value > 0 else "-inf")


def _last_good(trainer: pl.Trainer) -> str:
    """A sentence naming the newest and the best checkpoint on disk, if any (once the saves
    still being written in the background have reached the disk)."""
    checkpoint_io = getattr(getattr(trainer, "strategy", None), "checkpoint_io", None)
    wait = getattr(checkpoint_io, "wait", None)  # BackgroundCheckpointIO's
    if callable(wait):
        wait()
    last, best = "", ""
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "monitor", None):
            best = best or getattr(cb, "best_model_path", "")
        else:  # cnnlab's last.ckpt callbacks: no metric, the newest file is their "best"
            last = last or getattr(cb, "last_model_path", "") or getattr(cb, "best_model_path", "")
    last = last if last and Path(last).is_file() else ""
    best = best if best and Path(best).is_file() else ""
    if last and best:
        return f"The last good checkpoint is {last} (the best so far: {best})."
    if last or best:
        return f"The last good checkpoint is {last or best}."
    return "No checkpoint was saved before it."
