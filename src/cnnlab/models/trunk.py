"""A classification network's convolutional part laid out as stages, its classifier head left out.

Detectors and FCNs build on it (``detection_backbones``, ``segmentation``). Each family that can
serve as a backbone says how it splits by a method ``trunk(self) -> Trunk``; the helpers below
are what those methods share. This module imports no family, so every family can import it.
"""

import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.nn.layers import CONV2D, MAX_POOL2D


@dataclass
class Trunk:
    """A network's convolutional part: ``body`` runs its children in order."""

    body: nn.Sequential
    stages: list[list[str]]  # the body's child names, grouped by stage, first to last
    channels: list[int]  # output channels of each stage


def trunk_from_children(children: list[tuple[str, nn.Module]], stages: list[list[str]]) -> Trunk:
    """A trunk of the named ``children`` in order; each stage is as wide as its last conv."""
    body = nn.Sequential(OrderedDict(children))
    channels = [
        _last_conv_width(nn.Sequential(*(body.get_submodule(n) for n in s))) for s in stages
    ]
    return Trunk(body, stages, channels)


def pooled_trunk(features: nn.Sequential) -> Trunk:
    """``features`` cut after each max pool (VGG's five stages, AlexNet's three)."""
    children, stages, current = [], [], []
    for i, layer in enumerate(features):
        children.append((f"features{i}", layer))
        current.append(f"features{i}")
        if isinstance(layer, MAX_POOL2D):
            stages.append(current)
            current = []
    if current:  # layers after the last pool join the last stage
        stages[-1] += current
    return trunk_from_children(children, stages)


def trunk_of(net: nn.Module) -> Trunk:
    """The stages of a cnnlab classification network: its own ``trunk()``."""
    if callable(getattr(net, "trunk", None)):
        return net.trunk()
    names = ", ".join(_classes_with_trunk())
    raise UserError(
        f"A {type(net).__name__} cannot serve as a detection or segmentation backbone: it has no "
        f"trunk() that cuts it into stages ({names} have one). Choose another model/backbone "
        f"(e.g. resnet18, vgg16)."
    )


def freeze_stages(trunk: Trunk, trainable_layers: int | None) -> None:
    """Stop gradients to all but the last ``trainable_layers`` stages (None: all train)."""
    if trainable_layers is None:
        return
    n = len(trunk.stages)
    if not 0 <= trainable_layers <= n:
        raise UserError(
            f"model.trainable_layers={trainable_layers}, but this backbone has {n} stages: "
            f"choose 0 (all frozen) to {n} (all train), or null (all train)."
        )
    for stage in trunk.stages[: n - trainable_layers]:
        for name in stage:
            trunk.body.get_submodule(name).requires_grad_(False)


@contextmanager
def probing(module: nn.Module) -> Iterator[None]:
    """Run ``module`` on a blank probe picture to measure its maps: in eval mode (batch norm's
    running statistics stay as they are), without gradients, its training flag put back after."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


class StageTaps(nn.Module):
    """Runs a trunk's body and returns the outputs of the named children, in order; the
    children after the last one named are not run."""

    def __init__(self, body: nn.Sequential, taps: list[str]) -> None:
        super().__init__()
        self.body, self.taps = body, taps

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for name, layer in self.body.named_children():
            x = layer(x)
            if name in self.taps:
                out.append(x)
                if len(out) == len(self.taps):
                    break
        return out


def tap_strides(taps: StageTaps, probe_size: int = 128) -> list[int]:
    """The stride of each tapped map (2 ** k), measured on a blank RGB probe picture."""
    with probing(taps):
        maps = taps(torch.zeros(1, 3, probe_size, probe_size))
    # the nearest power of two: a stage without padding shrinks a little more than its stride
    return [2 ** max(0, round(math.log2(probe_size / m.shape[-1]))) for m in maps]


def set_output_stride(net: nn.Module, output_stride: int) -> None:
    """Dilate ``net``'s last stages so that its maps stay at 1/``output_stride`` of the image
    (its family's own ``dilate()``: cnnlab's ResNets and VGGs)."""
    if callable(getattr(net, "dilate", None)):
        net.dilate(output_stride)
    elif output_stride != 32:
        raise UserError(
            f"model.output_stride={output_stride}: a {type(net).__name__} backbone cannot be "
            "dilated; the ResNets (resnet18 to resnet152) and the VGGs can. Choose one of those "
            "with model/backbone=NAME, or model.output_stride=32."
        )


def _last_conv_width(module: nn.Module) -> int:
    return [m for m in module.modules() if isinstance(m, CONV2D)][-1].out_channels


def _classes_with_trunk() -> list[str]:
    """The names of the loaded network classes that define ``trunk()``, in definition order."""
    found, todo = {}, [nn.Module]
    while todo:
        cls = todo.pop(0)
        todo += cls.__subclasses__()
        if "trunk" in vars(cls) and cls.__module__.startswith("cnnlab."):
            found[cls.__name__] = None
    return list(found)
