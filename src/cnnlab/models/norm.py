"""The normalisation layers a model can be built with, chosen by name (``model.norm``).

Shared by every family that has batch norm (ResNet, the CIFAR ResNets, VGG-BN): torch's layer,
or cnnlab.nn's with the hand-written backward pass (same parameters and buffers, so the state
dict is the same either way).
"""

from collections.abc import Callable

from torch import nn

import cnnlab.nn
from cnnlab.errors import UserError

NormLayer = Callable[[int], nn.Module]
NORM_LAYERS: dict[str, NormLayer] = {
    "torch": nn.BatchNorm2d,
    "textbook": cnnlab.nn.BatchNorm2d,  # Ioffe & Szegedy's gradients written out by hand
}


def norm_layer(name: str) -> NormLayer:
    """The batch-norm class called ``name``; an unknown name is refused, naming the choices."""
    if name not in NORM_LAYERS:
        raise UserError(
            f"model.norm={name!r} is not a normalisation cnnlab knows; "
            f"choose one of {', '.join(NORM_LAYERS)}."
        )
    return NORM_LAYERS[name]
