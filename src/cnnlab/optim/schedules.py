"""Learning-rate schedules as multipliers of the base rate, one value per optimizer step.

Every schedule is a pure function of (step, total steps), wrapped in torch's LambdaLR. The
checkpoint keeps only the step counter, so a run resumed with a larger ``trainer.max_epochs``
rebuilds the schedule for the new length and continues from the restored step; a torch
OneCycleLR would raise past its end and a CosineAnnealingLR would climb again.
"""

import math
from functools import partial

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from cnnlab.errors import UserError

SCHEDULES = ("none", "step", "cosine", "onecycle")


def multiplier(
    step: int,
    *,
    name: str,
    total_steps: int,
    steps_per_epoch: int,
    warmup_steps: int = 0,
    step_size: float = 30,
    gamma: float = 0.1,
    min_lr_ratio: float = 0.0,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> float:
    """The factor that multiplies the base learning rate at optimizer step ``step`` (from 0)."""
    if name == "onecycle":  # Smith & Topin 2017: cosine up from lr/div to lr, then down to ~0
        up = max(1, round(pct_start * total_steps))
        start, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)
        if step < up:
            return _cos_between(start, 1.0, step / up)
        return _cos_between(1.0, end, min(1.0, (step - up) / max(1, total_steps - up)))
    if step < warmup_steps:  # linear warm-up from ~0 to the base rate
        return (step + 1) / (warmup_steps + 1)
    if name == "none":
        return 1.0
    if name == "step":  # multiply by gamma every `step_size` epochs
        return gamma ** math.floor(step / (step_size * steps_per_epoch))
    if name == "cosine":  # half a cosine from 1 down to min_lr_ratio over the remaining steps
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return _cos_between(1.0, min_lr_ratio, t)
    raise UserError(f"Unknown scheduler.name {name!r}; choose one of {', '.join(SCHEDULES)}.")


def _cos_between(a: float, b: float, t: float) -> float:
    """Cosine interpolation from a (t=0) to b (t=1)."""
    return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * t))


def build_scheduler(
    optimizer: Optimizer,
    *,
    total_steps: int,
    steps_per_epoch: int,
    name: str = "none",
    warmup_epochs: float = 0.0,
    **kwargs,
) -> LambdaLR:
    """A per-step LambdaLR for ``name`` over ``total_steps`` optimizer steps."""
    if name not in SCHEDULES:
        raise UserError(f"Unknown scheduler.name {name!r}; choose one of {', '.join(SCHEDULES)}.")
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    fn = partial(
        multiplier,
        name=name,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        warmup_steps=warmup_steps,
        **kwargs,
    )
    return LambdaLR(optimizer, fn)
