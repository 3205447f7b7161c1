"""Mixup and CutMix on a training batch (torchvision.transforms.v2), for ``recipe.mixup_alpha``
and ``recipe.cutmix_alpha``.

Both turn the labels (B,) into soft targets (B, K) whose rows sum to 1: Mixup blends two images
and their one-hot labels with a weight drawn from Beta(alpha, alpha); CutMix pastes a box of one
image into another and weighs the labels by area. With both on, each batch gets one of the two
at random, as torchvision's classification reference does.
"""

from torch import nn
from torchvision.transforms import v2


def batch_mixer(num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0):
    """The transform ``(images, labels) -> (mixed images, soft targets)``, or None when both
    alphas are 0."""
    for name, alpha in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
        if alpha < 0:
            raise ValueError(f"recipe.{name} must be 0 (off) or more, got {alpha}.")
    chosen: list[nn.Module] = []
    if mixup_alpha > 0:
        chosen.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
    if cutmix_alpha > 0:
        chosen.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
    if not chosen:
        return None
    return chosen[0] if len(chosen) == 1 else v2.RandomChoice(chosen)
