"""Learned upsampling for FCNs: a transposed convolution that starts as bilinear interpolation.

``BilinearUpsample(channels, factor)`` maps (B, C, h, w) to (B, C, factor*h, factor*w) with a
transposed convolution (kernel 2*factor, stride factor, padding factor/2). Its weights start as
the bilinear kernel, which makes it equal to
``F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)`` away from the
border (at the border the transposed convolution sees zeros, interpolation repeats the edge);
training then changes them like any other weights (Long et al. 2015, section 3.3).
"""

import torch
import torch.nn.functional as F
from torch import nn


def bilinear_kernel(size: int) -> torch.Tensor:
    """A (size, size) bilinear interpolation kernel, as in the FCN paper's code."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float32)
    filt = 1 - (og - centre).abs() / factor
    return filt[:, None] * filt[None, :]


class BilinearUpsample(nn.Module):
    """Upsample each channel by an even integer ``factor`` (1 passes the input through).

    ``full``: the paper's intermediate upsamplings, C x C filters (every output class may draw
    on every input class), bilinear on the diagonal and zero elsewhere at the start; otherwise
    one filter per channel. ``learnable=False``: the kernel is a buffer, fixed bilinear for
    good (the paper's last upsampling). ``padding``: the transposed convolution's, factor / 2 by
    default (the output is then factor x the input's size); the paper's networks use 0 and crop.
    """

    def __init__(
        self,
        channels: int,
        factor: int,
        full: bool = False,
        learnable: bool = True,
        padding: int | None = None,
    ) -> None:
        super().__init__()
        if factor < 1 or (factor > 1 and factor % 2):
            raise ValueError(f"upsampling factor must be 1 or even, not {factor}")
        self.factor, self.kernel = factor, 2 * factor
        self.padding = factor // 2 if padding is None else padding
        self.groups = 1 if full else channels
        if factor == 1:
            self.weight = None
            return
        weight = torch.zeros(channels, channels // self.groups, self.kernel, self.kernel)
        kernel = bilinear_kernel(self.kernel)
        if full:
            weight[range(channels), range(channels)] = kernel
        else:
            weight[:] = kernel
        if learnable:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer("weight", weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is None:
            return x
        return F.conv_transpose2d(
            x, self.weight, stride=self.factor, padding=self.padding, groups=self.groups
        )

    def extra_repr(self) -> str:
        learnable = isinstance(self.weight, nn.Parameter)
        return f"factor={self.factor}, groups={self.groups}, learnable={learnable}"


def fit_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop (bottom and right) or pad (repeating the edge) ``x`` to ``height`` x ``width``.

    Feature maps of stride s start at the image's top-left corner, so the two stay aligned
    there and only the far edges differ.
    """
    x = x[..., :height, :width]
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x
