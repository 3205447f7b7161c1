"""``data.balance``: what a classification run does against an imbalanced training split.

- ``none``: nothing (every image drawn once per epoch, every class weighted alike);
- ``sampler``: the training loader draws images with replacement, each with probability
  proportional to 1 / (images of its class), so every class is drawn about equally often
  (torch's ``WeightedRandomSampler``; the in-memory loader draws the same way);
- ``loss``: the training cross-entropy weighs class c by N / (K * n_c) (scikit-learn's
  "balanced" class weights), so every class adds as much to the loss in total.
"""

import torch

from cnnlab.errors import UserError

BALANCE_MODES = ("none", "sampler", "loss")


def check_balance(value: str) -> str:
    """``value`` when it is one of ``BALANCE_MODES``; a UserError naming the key otherwise."""
    if value not in BALANCE_MODES:
        raise UserError(
            f"data.balance={value} is not known: choose one of {', '.join(BALANCE_MODES)} "
            "(sampler draws rare classes more often, loss weighs them more in the loss)."
        )
    return value


def balanced_class_weights(counts: torch.Tensor) -> torch.Tensor:
    """N / (K * n_c) for each class c with n_c images (N images, K classes that have any), as
    float32; a class without training images gets 0 (it never appears in the loss)."""
    counts = counts.to(torch.float64)
    present = counts > 0
    weights = counts.sum() / (present.sum() * counts.where(present, torch.inf))
    return weights.to(torch.float32)


def sample_weights(labels: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """1 / (images of its class) for each item of ``labels``: the draw weights under which
    every class present is as likely as any other."""
    return 1.0 / counts.to(torch.float64)[labels.long()]
