"""Max and average pooling: each activation map is shrunk on its own, window by window.

Built from differentiable tensor ops (pad, a sliding-window view, a reduction), so autograd
gives the backward pass: max pooling sends each gradient to the window's largest input (the
first one on a tie, as torch does), average pooling shares it equally over the window.
"""

import torch
from torch.nn import functional as F

from cnnlab.nn.conv import IntPair, pair


def _windows(
    x: torch.Tensor,
    kernel_size: IntPair,
    stride: IntPair | None,
    padding: IntPair,
    fill: float,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """Every pooling window of ``x`` (B, C, H, W) as (B, C, out_h, out_w, kh*kw).

    The border is padded with ``fill``; ``stride`` defaults to the kernel size (windows that
    touch but do not overlap). Rows and columns no window reaches are dropped, as in torch,
    unless ``ceil_mode``: then one more window is taken where the last one would hang over
    the end (filled with ``fill`` there), provided it starts inside the input or its left
    padding (torch's rule).
    """
    (kh, kw), (ph, pw) = pair(kernel_size), pair(padding)
    sh, sw = pair(kernel_size if stride is None else stride)
    if 2 * ph > kh or 2 * pw > kw:  # torch's rule: a window must see some of the input
        raise ValueError(f"pooling padding {(ph, pw)} must be at most half the kernel {(kh, kw)}")
    end_h, end_w = (
        _overhang(n, k, s, p) if ceil_mode else 0
        for n, k, s, p in ((x.shape[-2], kh, sh, ph), (x.shape[-1], kw, sw, pw))
    )
    x = F.pad(x, (pw, pw + end_w, ph, ph + end_h), value=fill)  # (B, C, H + 2ph, W + 2pw)
    win = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (B, C, out_h, out_w, kh, kw), a view
    return win.flatten(-2)  # (B, C, out_h, out_w, kh*kw), row by row as torch scans a window


def _overhang(n: int, k: int, s: int, p: int) -> int:
    """How far the extra window of ``ceil_mode`` reaches past the padded side, or 0."""
    out = -(-(n + 2 * p - k) // s) + 1  # ceil((n + 2p - k) / s) + 1
    if (out - 1) * s >= n + p:  # the last window would start in the right padding: dropped
        out -= 1
    return max(0, (out - 1) * s + k - (n + 2 * p))


def max_pool2d(
    x: torch.Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """The largest value of each window; padding is -inf, so it is never picked. ``ceil_mode``
    rounds the output size up (GoogLeNet's pools): see ``_windows``."""
    windows = _windows(x, kernel_size, stride, padding, float("-inf"), ceil_mode)
    return windows.max(dim=-1).values


def avg_pool2d(
    x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> torch.Tensor:
    """The mean of each window; padded zeros count (torch's default ``count_include_pad``)."""
    return _windows(x, kernel_size, stride, padding, 0.0).mean(dim=-1)
