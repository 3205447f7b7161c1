"""A cnnlab classification network as a detector's feature trunk, with or without an FPN.

The classifier head is dropped and the rest is laid out as stages in forward order, as each
family's ``trunk()`` method says (``cnnlab.models.trunk``): ResNet (stem, layer1-layer4), CIFAR
ResNet (stem, layer1-layer3), VGG and AlexNet (``features`` cut after each max pool) and
GoogLeNet (stem, 3a-3b, pool+4a-4e, pool+5a-5b). The trunk gives torchvision's detectors what
they take: a module that maps images (B, 3, H, W) to an ordered dict of feature maps, with an
``out_channels`` attribute.

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

import torch
from torch import nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from cnnlab.errors import UserError
from cnnlab.models.trunk import freeze_stages, trunk_of


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
