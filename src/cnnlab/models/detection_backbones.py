"""A cnnlab classification network as a detector's feature trunk, with or without an FPN.

The classifier head is dropped and the rest is laid out as stages in forward order: ResNet
(stem, layer1-layer4), CIFAR ResNet (stem, layer1-layer3), VGG and AlexNet (``features`` cut
after each max pool) and GoogLeNet (stem, 3a-3b, pool+4a-4e, pool+5a-5b). The trunk gives
torchvision's detectors what they take: a module that maps images (B, 3, H, W) to an ordered
dict of feature maps, with an ``out_channels`` attribute.

- ``fpn=True``: a feature pyramid (``BackboneWithFPN``) over the last ``fpn_stages`` stages,
  each map ``out_channels`` wide, plus a max-pooled level "pool" on top (torchvision's layout):
  maps "0" (finest) .. str(fpn_stages - 1), then "pool".
- ``fpn=False``: the last stage's map alone, named "0", as wide as that stage.

``trainable_layers=k`` trains only the last k stages (the FPN always trains), like torchvision's
``trainable_backbone_layers``; None trains all. BatchNorm layers stay cnnlab's ordinary,
trainable ones (torchvision freezes them as FrozenBatchNorm2d when it loads pretrained weights);
in a frozen stage they keep updating their running statistics in training mode.
"""

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from cnnlab.errors import UserError
from cnnlab.models.alexnet import AlexNet
from cnnlab.models.googlenet import INCEPTION, GoogLeNet
from cnnlab.models.resnet import ResNet
from cnnlab.models.resnet_cifar import CifarResNet
from cnnlab.models.vgg import VGG


@dataclass
class Trunk:
    """A network's convolutional part: ``body`` runs its children in order."""

    body: nn.Sequential
    stages: list[list[str]]  # the body's child names, grouped by stage, first to last
    channels: list[int]  # output channels of each stage


class SingleMap(nn.Module):
    """The trunk's last feature map as the detector's one feature map, named "0"."""

    def __init__(self, body: nn.Sequential, out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict([("0", self.body(x))])  # (B, out_channels, H/s, W/s)


def feature_backbone(
    net: nn.Module,
    fpn: bool = True,
    out_channels: int = 256,
    fpn_stages: int = 3,
    trainable_layers: int | None = None,
) -> tuple[nn.Module, list[str]]:
    """The feature trunk of ``net`` and the names of the maps it returns, finest first."""
    trunk = trunk_of(net)
    freeze_stages(trunk, trainable_layers)
    if not fpn:
        return SingleMap(trunk.body, trunk.channels[-1]), ["0"]
    if not 1 <= fpn_stages <= len(trunk.stages):
        raise UserError(
            f"model.fpn_stages={fpn_stages}, but the {type(net).__name__} trunk has "
            f"{len(trunk.stages)} stages: choose 1 to {len(trunk.stages)}."
        )
    stages = trunk.stages[-fpn_stages:]
    return_layers = {stage[-1]: str(i) for i, stage in enumerate(stages)}
    backbone = BackboneWithFPN(
        trunk.body,
        return_layers,
        trunk.channels[-fpn_stages:],
        out_channels,
        extra_blocks=LastLevelMaxPool(),
    )
    return backbone, [*return_layers.values(), "pool"]


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


def trunk_of(net: nn.Module) -> Trunk:
    """The stages of a cnnlab classification network, its classifier head left out."""
    for family, split in _SPLITS.items():
        if isinstance(net, family):
            return split(net)
    names = ", ".join(f.__name__ for f in _SPLITS)
    raise UserError(
        f"A {type(net).__name__} cannot serve as a detection backbone: cnnlab knows how to cut "
        f"these into stages: {names}. Choose another model/backbone (e.g. resnet18, vgg16)."
    )


def _last_conv_width(module: nn.Module) -> int:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


def _from_children(children: list[tuple[str, nn.Module]], stages: list[list[str]]) -> Trunk:
    body = nn.Sequential(OrderedDict(children))
    channels = [
        _last_conv_width(nn.Sequential(*(body.get_submodule(n) for n in s))) for s in stages
    ]
    return Trunk(body, stages, channels)


def _resnet(net: ResNet) -> Trunk:
    """Stem (stride 4), layer1 (4), layer2 (8), layer3 (16), layer4 (32): torchvision's names."""
    stem = ["conv1", "bn1", "relu", "maxpool"]
    layers = ["layer1", "layer2", "layer3", "layer4"]
    children = [(n, getattr(net, n)) for n in stem + layers]
    return _from_children(children, [stem, *([n] for n in layers)])


def _cifar_resnet(net: CifarResNet) -> Trunk:
    """Stem (stride 1), layer1 (1), layer2 (2), layer3 (4): made for 32x32 images."""
    stem = ["conv1", "bn1", "relu"]
    layers = ["layer1", "layer2", "layer3"]
    children = [("conv1", net.conv1), ("bn1", net.bn1), ("relu", nn.ReLU(inplace=True))]
    children += [(n, getattr(net, n)) for n in layers]
    return _from_children(children, [stem, *([n] for n in layers)])


def _pooled_features(net: VGG | AlexNet) -> Trunk:
    """``features`` cut after each max pool: VGG's five stages (strides 2-32), AlexNet's three."""
    children, stages, current = [], [], []
    for i, layer in enumerate(net.features):
        children.append((f"features{i}", layer))
        current.append(f"features{i}")
        if isinstance(layer, nn.MaxPool2d):
            stages.append(current)
            current = []
    if current:  # layers after the last pool join the last stage
        stages[-1] += current
    return _from_children(children, stages)


def _googlenet(net: GoogLeNet) -> Trunk:
    """Stem (192 channels, stride 8), 3a-3b (480, 8), 4a-4e (832, 16), 5a-5b (1024, 32)."""
    stem = ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2"]
    stem = [n for n in stem if getattr(net, n) is not None]
    stages = [stem, ["inception3a", "inception3b"]]
    stages.append(["maxpool3", *(f"inception4{c}" for c in "abcde")])
    stages.append(["maxpool4", "inception5a", "inception5b"])
    children = [(n, getattr(net, n)) for stage in stages for n in stage]
    widths = {
        name: sum(INCEPTION[name.removeprefix("inception")][i] for i in (1, 3, 5, 6))
        for name in ("inception3b", "inception4e", "inception5b")
    }  # an Inception block concatenates its 1x1, 3x3, 5x5 and pool-projection branches
    channels = [192, *(widths[stage[-1]] for stage in stages[1:])]
    return Trunk(nn.Sequential(OrderedDict(children)), stages, channels)


_SPLITS = {
    ResNet: _resnet,
    CifarResNet: _cifar_resnet,
    VGG: _pooled_features,
    AlexNet: _pooled_features,
    GoogLeNet: _googlenet,
}
