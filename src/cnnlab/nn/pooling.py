"""Max and average pooling: each activation map is shrunk on its own, window by window.

Built from differentiable tensor ops (pad, a sliding-window view, a reduction), so autograd
gives the backward pass: max pooling sends each gradient to the window's largest input (the
first one on a tie, as torch does), average pooling shares it equally over the window.
"""

import torch
from torch.nn import functional as F

from cnnlab.nn.conv import IntPair, pair


def _windows(
    x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair, fill: float
) -> torch.Tensor:
    """Every pooling window of ``x`` (B, C, H, W) as (B, C, out_h, out_w, kh*kw).

    The border is padded with ``fill``; ``stride`` defaults to the kernel size (windows that
    touch but do not overlap). Rows and columns no window reaches are dropped, as in torch.
    """
    (kh, kw), (ph, pw) = pair(kernel_size), pair(padding)
    sh, sw = pair(kernel_size if stride is None else stride)
    if 2 * ph > kh or 2 * pw > kw:  # torch's rule: a window must see some of the input
        raise ValueError(f"pooling padding {(ph, pw)} must be at most half the kernel {(kh, kw)}")
    x = F.pad(x, (pw, pw, ph, ph), value=fill)  # (B, C, H + 2ph, W + 2pw)
    win = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (B, C, out_h, out_w, kh, kw), a view
    return win.flatten(-2)  # (B, C, out_h, out_w, kh*kw), row by row as torch scans a window


def max_pool2d(
    x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> torch.Tensor:
    """The largest value of each window; padding is -inf, so it is never picked."""
    return _windows(x, kernel_size, stride, padding, float("-inf")).max(dim=-1).values


def avg_pool2d(
    x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> torch.Tensor:
    """The mean of each window; padded zeros count (torch's default ``count_include_pad``)."""
    return _windows(x, kernel_size, stride, padding, 0.0).mean(dim=-1)
