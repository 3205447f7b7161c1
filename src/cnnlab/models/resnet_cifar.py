"""The CIFAR residual networks of He et al. (2016), section 4.2, for 32x32 inputs.

A 3x3 convolution with 16 filters, three stages of n basic blocks with 16, 32 and 64 filters
(feature maps 32, 16 and 8 pixels wide), global average pooling and one linear layer: 6n + 2
weighted layers. Shortcuts are the paper's option A: the identity, subsampled and padded with
zero channels where a stage halves the size, so they add no parameters (resnet20: 269,722 for
three channels and ten classes, the paper's "0.27M").
"""

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.norm import NormLayer, norm_layer
from cnnlab.models.registry import register_model
from cnnlab.models.resnet import conv3x3
from cnnlab.models.trunk import Trunk, trunk_from_children

TASK = "classification"
ZOO_POSITION = 6  # its rows go last in the model table, after the ImageNet ResNets


class PaddedShortcut(nn.Module):
    """Option A: keep every other pixel and zero-pad the new channels (no parameters)."""

    def __init__(self, extra_channels: int) -> None:
        super().__init__()
        self.extra = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::2, ::2]  # (B, C, H/2, W/2)
        half = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra - half))  # (B, C + extra, H/2, W/2)


class CifarBlock(nn.Module):
    """Two 3x3 convolutions with batch norm; the shortcut is the identity or option A."""

    def __init__(self, in_planes: int, planes: int, stride: int, norm: NormLayer) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = norm(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm(planes)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_planes == planes
            else PaddedShortcut(planes - in_planes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """6n + 2 layers: stem, three stages of n blocks (16, 32, 64 filters), pool, classifier."""

    head_names = ("fc",)
    cam_layer = "layer3"  # the last stage: Grad-CAM's maps

    def __init__(
        self, n: int, num_classes: int = 10, in_channels: int = 3, norm: str = "torch"
    ) -> None:
        super().__init__()
        layer = norm_layer(norm)
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = layer(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = [CifarBlock(in_planes, planes, stride, layer)]
            blocks += [CifarBlock(planes, planes, 1, layer) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            in_planes = planes
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. 2015 initialisation, as the paper says
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def trunk(self) -> Trunk:
        """Stem (stride 1), layer1 (1), layer2 (2), layer3 (4): made for 32x32 images."""
        stem = ["conv1", "bn1", "relu"]
        layers = ["layer1", "layer2", "layer3"]
        children = [("conv1", self.conv1), ("bn1", self.bn1), ("relu", nn.ReLU(inplace=True))]
        children += [(n, getattr(self, n)) for n in layers]  # forward's F.relu as a layer
        return trunk_from_children(children, [stem, *([n] for n in layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 16, 32, 32)
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, 64, 8, 8)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register_model("resnet20")
def resnet20(**kwargs) -> CifarResNet:
    return CifarResNet(3, **kwargs)


@register_model("resnet32")
def resnet32(**kwargs) -> CifarResNet:
    return CifarResNet(5, **kwargs)


@register_model("resnet44")
def resnet44(**kwargs) -> CifarResNet:
    return CifarResNet(7, **kwargs)


@register_model("resnet56")
def resnet56(**kwargs) -> CifarResNet:
    return CifarResNet(9, **kwargs)


@register_model("resnet110")
def resnet110(**kwargs) -> CifarResNet:
    return CifarResNet(18, **kwargs)
