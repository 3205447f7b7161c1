"""Atrous spatial pyramid pooling: one map looked at through several dilated filters at once.

A 3x3 filter dilated by rate r has its nine taps r pixels apart, so it covers (2r+1) x (2r+1)
pixels of the map with nine weights. Several rates side by side see objects at several scales
from the same map (Chen et al., DeepLab, TPAMI 2018, section 3.3).

- ``PyramidScores`` is DeepLab v2's form: each rate's branch scores the classes on its own
  and the scores are summed (ASPP-L: rates 6, 12, 18, 24).
- ``ASPP`` is DeepLab v3's (Chen et al. 2017, section 3.3): a 1x1 branch, three dilated 3x3
  branches and an image-level branch (the map averaged to one vector, spread back over the map),
  each with batch norm, concatenated and projected by a 1x1 convolution.

A rate larger than the map has no neighbours to look at: its off-centre taps fall on the zero
padding and the filter acts as its centre 1x1 alone. Pick rates for the maps a run gives
(a 96-pixel image at output stride 16 leaves a 6x6 map).
"""

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int, rate: int = 1) -> nn.Sequential:
    """A convolution that keeps the map's size (padding = rate * (kernel // 2)), BN, ReLU."""
    pad = rate * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=pad, dilation=rate, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class PyramidScores(nn.Module):
    """DeepLab v2: ``sum_r conv3x3_rate_r(x)``, each branch from ``in_channels`` to the classes.

    ``hidden`` > 0 gives each branch the VGG form instead: a dilated 3x3 convolution to
    ``hidden`` channels, a 1x1 to ``hidden``, then the 1x1 score layer (ReLU and dropout between).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        rates: tuple[int, ...] = (6, 12, 18, 24),
        hidden: int = 0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        branches = []
        for r in rates:
            if hidden:
                branch = nn.Sequential(
                    nn.Conv2d(in_channels, hidden, 3, padding=r, dilation=r),
                    nn.ReLU(inplace=True),
                    nn.Dropout(dropout),
                    nn.Conv2d(hidden, hidden, 1),
                    nn.ReLU(inplace=True),
                    nn.Dropout(dropout),
                    nn.Conv2d(hidden, num_classes, 1),
                )
            else:
                branch = nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r)
            branches.append(branch)
        self.branches = nn.ModuleList(branches)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # DeepLab's released models start these at N(0, 0.01)
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches)


class ImagePooling(nn.Module):
    """The map averaged to one vector, 1x1 conv + BN + ReLU, then copied to every position."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, 1)
        if self.training and x.shape[0] == 1:
            # one picture leaves one value a channel, which batch norm cannot normalise by
            # (torch raises): that batch uses the running statistics, as in evaluation
            bn = self.conv[1]
            bn.eval()
            pooled = self.conv(pooled)
            bn.train()
        else:
            pooled = self.conv(pooled)
        return pooled.expand(-1, -1, *x.shape[-2:])  # bilinear from 1x1 is a copy


class ASPP(nn.Module):
    """DeepLab v3's pyramid: (B, in, h, w) -> (B, channels, h, w)."""

    def __init__(
        self,
        in_channels: int,
        rates: tuple[int, ...] = (6, 12, 18),
        channels: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, channels, 1)]
            + [conv_bn_relu(in_channels, channels, 3, r) for r in rates]
            + [ImagePooling(in_channels, channels)]
        )
        self.project = nn.Sequential(
            conv_bn_relu(channels * len(self.branches), channels, 1), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))
