"""Convolution as the lecture draws it: slide a filter, take dot products (im2col + one matmul).

Deep-learning "convolution" is cross-correlation: the filter is not flipped. The lecture's
worked example shows it: the true convolution with kernel k equals sliding the flipped kernel,
the filter, over the image, which is what ``conv2d`` below (and torch's) computes.
"""

import torch
from torch.nn import functional as F

IntPair = int | tuple[int, int]


def pair(value: IntPair) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; a pair is returned as it is (height first, then width)."""
    if isinstance(value, int):
        return value, value
    height, width = value
    return int(height), int(width)


def conv_output_size(n: int, f: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output side of an ``f``x``f`` filter on an ``n``x``n`` input: (n - f + 2p)/stride + 1.

    With ``dilation`` d the filter's taps are d apart, so it spans d(f - 1) + 1 pixels and that
    effective size takes f's place in the rule (d = 1 is the ordinary filter).

    The lecture's strict rule: a filter that does not fit (the division leaves a remainder,
    or the filter is larger than the padded input) is a mistake, not something to round, so
    it raises a ValueError that shows the formula with the numbers filled in. The ops in this
    package round down as torch's do; this function is for checking a design by hand.
    """
    if stride < 1 or padding < 0 or n < 1 or f < 1 or dilation < 1:
        raise ValueError(
            f"conv_output_size needs n, f, stride, dilation >= 1 and padding >= 0, got n={n}, "
            f"f={f}, stride={stride}, padding={padding}, dilation={dilation}"
        )
    span_f = dilation * (f - 1) + 1  # the effective filter size: f taps, d apart
    span = n - span_f + 2 * padding  # how far the filter can move
    size = span / stride + 1
    if span < 0 or span % stride != 0:
        filter_name = f"{f}x{f} filter"
        if dilation > 1:
            filter_name += (
                f" at dilation {dilation} (effective size {dilation}*({f} - 1) + 1 = {span_f})"
            )
        raise ValueError(
            f"a {filter_name} does not fit a {n}x{n} input at stride {stride}, padding "
            f"{padding}: ({n} - {span_f} + 2*{padding})/{stride} + 1 = {size:.2f} is not a "
            f"whole number >= 1; change the stride or the padding"
        )
    return span // stride + 1


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D cross-correlation of ``x`` (B, C, H, W) with ``weight`` (O, C/groups, kh, kw), as
    torch's.

    Each output number is the dot product w^T x + b of one filter with one kh x kw x C chunk
    of the (zero-padded) input. ``unfold`` lays every chunk out as a column (im2col), so all
    of them are one matrix product. Sizes round down like torch's: rows and columns the
    filter cannot reach are dropped.

    ``dilation`` (atrous convolution) spaces the filter's taps ``d`` pixels apart, with holes
    between them: a 3x3 filter at rate d reads 9 pixels spread over a (2d + 1) x (2d + 1)
    square, still with 9 weights. DeepLab uses it to widen each output's field of view
    without adding weights and without the pooling or stride that would lower the map's
    resolution; a 3x3 at rate d with padding d keeps the size, as a 3x3 with padding 1 does.

    ``groups`` g splits the channels into g independent convolutions: filter group k reads only
    input channels k*C/g to (k+1)*C/g - 1. AlexNet's two-GPU towers are g = 2 (each tower's
    conv2, conv4 and conv5 saw only its own half of the maps), with 1/g of the weights.
    """
    batch, channels, height, width = x.shape
    out_channels, in_channels, kh, kw = weight.shape
    if in_channels * groups != channels or out_channels % groups:
        raise ValueError(
            f"conv2d: {groups} group(s) of a weight for {in_channels} channels need "
            f"{in_channels * groups} input channels, the input has {channels}; and the "
            f"{out_channels} filters must split evenly into the groups"
        )
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1  # d(k - 1) + 1: the effective size
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    # (B, C*kh*kw, out_h*out_w): one column per chunk, its taps dh rows and dw columns apart
    cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
    # a group's channels are one block of rows: (B, g, C/g*kh*kw, L)
    cols = cols.reshape(batch, groups, in_channels * kh * kw, -1)
    filters = weight.reshape(groups, out_channels // groups, -1)  # (g, O/g, C/g*kh*kw), (c, i, j)
    out = filters @ cols  # (B, g, O/g, out_h*out_w): every dot product of every group at once
    out = out.reshape(batch, out_channels, -1)  # the groups' filters side by side
    if bias is not None:
        out = out + bias.reshape(1, -1, 1)  # one bias per filter
    return out.reshape(batch, out_channels, out_h, out_w)
