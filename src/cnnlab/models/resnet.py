"""Residual networks (He et al. 2016, "Deep residual learning for image recognition").

The ImageNet variants of the paper's Table 1, laid out as torchvision lays them out, so the
parameter counts match (resnet18: 11,689,512 at 3 channels and 1,000 classes). Downsampling
happens in the first block of a stage, on the 3x3 convolution (the "v1.5" placement).
``norm`` picks the batch-norm layer: torch's, or cnnlab.nn's with the hand-written backward
pass (same parameters and buffers, so the state dict is the same either way).
"""

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.norm import NORM_LAYERS, NormLayer, norm_layer
from cnnlab.models.registry import register_model
from cnnlab.models.trunk import Trunk, trunk_from_children

TASK = "classification"
ZOO_POSITION = 5  # where the family's rows go in the model table (cnnlab.summary.model_zoo)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, norm: NormLayer = nn.BatchNorm2d
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = norm(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_planes, planes * self.expansion, stride, norm)

    def last_bn(self) -> nn.Module:
        return self.bn2

    def strided_conv(self) -> nn.Conv2d:
        return self.conv1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (by 4), used from ResNet-50 on."""

    expansion = 4

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, norm: NormLayer = nn.BatchNorm2d
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = norm(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = norm(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = norm(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_planes, planes * self.expansion, stride, norm)

    def last_bn(self) -> nn.Module:
        return self.bn3

    def strided_conv(self) -> nn.Conv2d:
        return self.conv2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(in_planes: int, out_planes: int, stride: int, norm: NormLayer) -> nn.Module | None:
    """Identity where shapes agree, else a strided 1x1 projection (the paper's option B)."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), norm(out_planes))


class ResNet(nn.Module):
    """Stem (7x7/2 convolution, 3x3/2 max pool), four stages, global average pool, classifier."""

    head_names = ("fc",)
    cam_layer = "layer4"  # the last stage: Grad-CAM's maps

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        zero_init_residual: bool = False,
        norm: str = "torch",
    ) -> None:
        super().__init__()
        self._norm_layer = norm_layer(norm)
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(block, 64, layers[0], stride=1)
        self.layer2 = self._stage(block, 128, layers[1], stride=2)
        self.layer3 = self._stage(block, 256, layers[2], stride=2)
        self.layer4 = self._stage(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, tuple(NORM_LAYERS.values())):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:  # each block starts as the identity (Goyal et al. 2017)
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    nn.init.zeros_(m.last_bn().weight)

    def _stage(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [block(self.in_planes, planes, stride, self._norm_layer)]
        self.in_planes = planes * block.expansion
        layers += [block(self.in_planes, planes, norm=self._norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def trunk(self) -> Trunk:
        """Stem (stride 4), layer1 (4), layer2 (8), layer3 (16), layer4 (32).

        The children keep torchvision's names, so the state-dict keys follow torchvision's.
        """
        stem = ["conv1", "bn1", "relu", "maxpool"]
        layers = ["layer1", "layer2", "layer3", "layer4"]
        children = [(n, getattr(self, n)) for n in stem + layers]
        return trunk_from_children(children, [stem, *([n] for n in layers)])

    def dilate(self, output_stride: int) -> None:
        """Keep the maps at 1/``output_stride`` of the image (16 or 8; 32 changes nothing).

        As the DeepLab papers do: the last stage (16), or the last two (8), lose their stride of
        2, and their 3x3 convolutions are dilated instead, by 2 in the first stage changed and 4
        in the second, so each filter still sees what it saw at the coarser resolution. A
        stage's first block keeps the rate of the stage before on its first 3x3 convolution,
        where the stride was. The weights are untouched: a pretrained network stays valid.
        """
        changed = {32: 0, 16: 1, 8: 2}.get(output_stride)
        if changed is None:
            raise UserError(
                f"model.output_stride={output_stride}: a ResNet can keep its maps at 1/32, 1/16 "
                "or 1/8 of the image; choose 32, 16 or 8."
            )
        rate = 1
        for stage in [self.layer3, self.layer4][2 - changed :]:
            previous, rate = rate, rate * 2
            for i, block in enumerate(stage):
                for conv in block.modules():
                    if not isinstance(conv, nn.Conv2d):
                        continue
                    conv.stride = (1, 1)
                    if conv.kernel_size == (3, 3):
                        first = i == 0 and conv is block.strided_conv()
                        d = previous if first else rate
                        conv.dilation, conv.padding = (d, d), (d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512*e, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _resnet(block, layers: list[int], **kwargs) -> ResNet:
    return ResNet(block, layers, **kwargs)


@register_model("resnet18", torchvision_weights=True)
def resnet18(**kwargs) -> ResNet:
    return _resnet(BasicBlock, [2, 2, 2, 2], **kwargs)


@register_model("resnet34", torchvision_weights=True)
def resnet34(**kwargs) -> ResNet:
    return _resnet(BasicBlock, [3, 4, 6, 3], **kwargs)


@register_model("resnet50", torchvision_weights=True)
def resnet50(**kwargs) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 6, 3], **kwargs)


@register_model("resnet101", torchvision_weights=True)
def resnet101(**kwargs) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 23, 3], **kwargs)


@register_model("resnet152", torchvision_weights=True)
def resnet152(**kwargs) -> ResNet:
    return _resnet(Bottleneck, [3, 8, 36, 3], **kwargs)
