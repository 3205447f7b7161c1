"""Learned upsampling for FCNs: a transposed convolution that starts as bilinear interpolation.

``BilinearUpsample(channels, factor)`` maps (B, C, h, w) to (B, C, factor*h, factor*w) with a
per-channel ``ConvTranspose2d`` (kernel 2*factor, stride factor, padding factor/2). Its weights
start as the bilinear kernel, which makes it equal to
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
    """Upsample each channel by an even integer ``factor`` (1 passes the input through)."""

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        if factor < 1 or (factor > 1 and factor % 2):
            raise ValueError(f"upsampling factor must be 1 or even, not {factor}")
        self.factor = factor
        self.deconv = None
        if factor > 1:
            self.deconv = nn.ConvTranspose2d(
                channels,
                channels,
                kernel_size=2 * factor,
                stride=factor,
                padding=factor // 2,
                groups=channels,
                bias=False,
            )
            with torch.no_grad():
                self.deconv.weight.copy_(bilinear_kernel(2 * factor).expand_as(self.deconv.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.deconv is None else self.deconv(x)


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
