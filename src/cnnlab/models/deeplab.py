"""DeepLab (Chen et al.): a classification network kept at a finer output stride by atrous
convolution, dilated filters for context, the scores upsampled by bilinear interpolation.

- ``deeplab_v1``: DeepLab-LargeFOV (ICLR 2015) on VGG-16. Pool4 and pool5 keep stride 1 and
  conv5 is dilated by 2 (output stride 8); fc6 becomes a 3x3 convolution with 1,024 channels
  dilated by 12, fc7 a 1x1 with 1,024, then the 1x1 score layer (20.5M parameters at 21
  classes).
- ``deeplab_v2``: v2's ASPP-L (TPAMI 2018): four 3x3 branches at rates 6, 12, 18, 24 on the
  last map, each scoring the classes, the scores summed (``aspp.PyramidScores``).
- ``deeplab_v3``: v3's ASPP (2017): 1x1, three dilated 3x3 and image pooling, with batch norm,
  concatenated and projected to 256 channels, then the 1x1 score layer (``aspp.ASPP``).
- ``deeplab_v3plus``: v3's encoder and a decoder (ECCV 2018): the encoder's map upsampled 4x
  by interpolation, joined with the trunk's stride-4 map (reduced to 48 channels by a 1x1
  convolution), two 3x3 convolutions, the scores, then 4x up to the image.

Every one runs on any cnnlab backbone that can be dilated (the ResNets and VGGs; see
``trunk.set_output_stride``) and returns (B, num_classes, H, W) for any input (B, 3, H, W),
odd sizes included: the scores are interpolated bilinearly to the input's size. The CRF that
v1 and v2 add after the network is post-processing (``models/crf.py``).
"""

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.aspp import ASPP, PyramidScores, conv_bn_relu
from cnnlab.models.segmentation import check_segmenter_inputs
from cnnlab.models.trunk import StageTaps, freeze_stages, set_output_stride, tap_strides, trunk_of

TASK = "segmentation"


def upsample_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear interpolation of ``x`` to ``height`` x ``width`` (a no-op at that size)."""
    if x.shape[-2:] == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


class DeepLab(nn.Module):
    """A dilated trunk, a head on its last map, and bilinear upsampling to the input's size.

    ``head`` takes the last map (and, for v3+, the stride-4 map) and returns class scores;
    ``low_level`` asks for the stride-4 map too.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head_builder,
        output_stride: int,
        low_level: bool = False,
        trainable_layers: int | None = None,
    ) -> None:
        super().__init__()
        self.task = TASK
        set_output_stride(backbone, output_stride)
        trunk = trunk_of(backbone)
        freeze_stages(trunk, trainable_layers)
        last = trunk.stages[-1][-1]
        taps, channels = [last], [trunk.channels[-1]]
        if low_level:
            every = StageTaps(trunk.body, [stage[-1] for stage in trunk.stages])
            strides = tap_strides(every)
            i = _stride_four(strides)
            taps, channels = [trunk.stages[i][-1], last], [trunk.channels[i], trunk.channels[-1]]
        self.features = StageTaps(trunk.body, taps)
        self.head = head_builder(*channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        return upsample_to(self.head(*self.features(x)), height, width)


def _stride_four(strides: list[int]) -> int:
    """The stage whose map is at 1/4 of the image (the finest one there is, if none is)."""
    at_four = [i for i, s in enumerate(strides) if s == 4]
    return at_four[-1] if at_four else min(range(len(strides)), key=lambda i: abs(strides[i] - 4))


class LargeFOVHead(nn.Module):
    """fc6 (3x3, dilated), fc7 (1x1), each with ReLU and dropout, then the class scores."""

    def __init__(self, in_channels: int, num_classes: int, channels: int, rate: int, dropout):
        super().__init__()
        self.fc6 = nn.Conv2d(in_channels, channels, 3, padding=rate, dilation=rate)
        self.fc7 = nn.Conv2d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)
        self.score = nn.Conv2d(channels, num_classes, 1)
        nn.init.normal_(self.score.weight, 0, 0.01)
        nn.init.zeros_(self.score.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(F.relu(self.fc6(x), inplace=True))
        x = self.drop(F.relu(self.fc7(x), inplace=True))
        return self.score(x)


class V3Head(nn.Module):
    """ASPP, then the 1x1 score layer."""

    def __init__(self, in_channels: int, num_classes: int, rates, channels: int, dropout):
        super().__init__()
        self.aspp = ASPP(in_channels, tuple(rates), channels, dropout)
        self.score = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.aspp(x))


class V3PlusHead(nn.Module):
    """ASPP on the last map; upsampled to the stride-4 map, joined with it, refined, scored."""

    def __init__(
        self, low_channels, in_channels, num_classes, rates, channels, dropout, reduced
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, tuple(rates), channels, dropout)
        self.reduce = conv_bn_relu(low_channels, reduced, 1)
        self.refine = nn.Sequential(
            conv_bn_relu(channels + reduced, channels, 3),
            conv_bn_relu(channels, channels, 3),
        )
        self.score = nn.Conv2d(channels, num_classes, 1)

    def forward(self, low: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = upsample_to(self.aspp(x), *low.shape[-2:])
        return self.score(self.refine(torch.cat([x, self.reduce(low)], dim=1)))


def _check(backbone, num_classes: int, in_channels: int, output_stride: int) -> None:
    check_segmenter_inputs("DeepLab takes", backbone, num_classes, in_channels)
    if output_stride not in (8, 16, 32):
        raise UserError(f"model.output_stride={output_stride}: choose 8, 16 or 32.")


def deeplab_v1(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int = 3,
    output_stride: int = 8,
    channels: int = 1024,
    rate: int = 12,
    dropout: float = 0.5,
    trainable_layers: int | None = None,
) -> DeepLab:
    """DeepLab-LargeFOV: fc6 3x3 dilated by ``rate`` with ``channels`` filters, fc7 1x1."""
    _check(backbone, num_classes, in_channels, output_stride)
    return DeepLab(
        backbone,
        lambda c: LargeFOVHead(c, num_classes, channels, rate, dropout),
        output_stride,
        trainable_layers=trainable_layers,
    )


def deeplab_v2(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int = 3,
    output_stride: int = 8,
    rates: tuple[int, ...] = (6, 12, 18, 24),
    hidden: int = 0,
    dropout: float = 0.5,
    trainable_layers: int | None = None,
) -> DeepLab:
    """DeepLab v2, ASPP-L: the classes scored at each rate and summed (``hidden`` > 0: each
    branch has v2's VGG form, fc6-fc7-fc8)."""
    _check(backbone, num_classes, in_channels, output_stride)
    return DeepLab(
        backbone,
        lambda c: PyramidScores(c, num_classes, tuple(rates), hidden, dropout),
        output_stride,
        trainable_layers=trainable_layers,
    )


def deeplab_v3(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int = 3,
    output_stride: int = 16,
    rates: tuple[int, ...] = (6, 12, 18),
    channels: int = 256,
    dropout: float = 0.1,
    trainable_layers: int | None = None,
) -> DeepLab:
    """DeepLab v3: ASPP with image pooling and batch norm, concatenated, then scored."""
    _check(backbone, num_classes, in_channels, output_stride)
    return DeepLab(
        backbone,
        lambda c: V3Head(c, num_classes, rates, channels, dropout),
        output_stride,
        trainable_layers=trainable_layers,
    )


def deeplab_v3plus(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int = 3,
    output_stride: int = 16,
    rates: tuple[int, ...] = (6, 12, 18),
    channels: int = 256,
    dropout: float = 0.1,
    low_level_channels: int = 48,
    trainable_layers: int | None = None,
) -> DeepLab:
    """DeepLab v3+: v3's encoder and a decoder that brings in the stride-4 map."""
    _check(backbone, num_classes, in_channels, output_stride)
    return DeepLab(
        backbone,
        lambda low, c: V3PlusHead(
            low, c, num_classes, rates, channels, dropout, low_level_channels
        ),
        output_stride,
        low_level=True,
        trainable_layers=trainable_layers,
    )
