"""RoI max pooling, the layer of Fast R-CNN (Girshick, ICCV 2015), from its definition.

A detector proposes regions of interest (RoIs) of every size and shape, but the fully
connected layers that classify them need an input of one fixed size. RoI pooling bridges the
two: each region, mapped onto the convolutional feature map, is cut into an oh x ow grid of
sub-windows (bins) of about (region height / oh) x (region width / ow) cells, and each bin is
max-pooled on its own, channel by channel. Whatever the region's size, the result is a
(C, oh, ow) map. It is max pooling whose windows follow the region instead of a fixed stride.

The arithmetic, as torchvision's kernel does it (and so as this one does, bit for bit):

- the box (x1, y1, x2, y2) is scaled to the map by ``spatial_scale`` (1/16 for a stride-16
  backbone) and each corner is ROUNDED to a whole cell, half away from zero;
- the region is rows y1..y2 and columns x1..x2, both ends included: height y2 - y1 + 1 (at
  least 1, so a reversed box counts as a single cell), likewise the width;
- bin ph covers rows [floor(ph * bin_h), ceil((ph + 1) * bin_h)) from the region's top, where
  bin_h = height / oh in the input's floating-point precision; neighbouring bins may share a
  row; the same for columns; then the rows and columns are clipped to the map;
- the output is the bin's largest value; a bin left empty by the clipping gives 0;
- the gradient of each output goes to the cell that gave its maximum (the first in row-major
  order on a tie, as torchvision's strict ``>`` scan picks); an empty bin passes none.

The rounding of the corners and of the bin edges is a quantisation: the pooled grid can sit up
to half a cell (8 input pixels at stride 16) away from the box, which costs localisation
accuracy. Mask R-CNN's RoIAlign (He et al., 2017) removed it by keeping the coordinates
fractional and sampling the map bilinearly.

How the maxima are found. Scanning each bin cell by cell, as the C++ kernel does, would be a
Python loop of K*oh*ow steps. Instead, tables of window maxima are built over the whole map,
all channels at once: for a window size h x w, the max of every h x w window and the cell it
comes from. A size's table comes from a smaller one by one elementwise comparison: one more
column (or row), or two windows side by side. Sizes up to 4 cells a side each get a table;
beyond that only powers of two do, and a longer bin is covered by two overlapping windows a
side, one from each end (a max does not mind counting a cell twice). Each bin is then one
look-up (up to four for long bins) in the table of its size: all bins at once from the
tables stacked together when they are no larger than the output (small maps, many regions),
else table by table. The backward pass is the kernel's: each output's gradient is added at
the cell its maximum came from.

Cost, for a longest bin of L cells: Th * Tw tables, each one pass over the N*C*H*W input,
where T = L up to 4 and 4 + floor(log2(L / 4)) beyond (Th = Tw = 4 for bins of 4 to 7
cells), plus a pass or two over the K*C*oh*ow output for the look-ups; the kernel's scan is
K*C*(area of the regions), so it wins on large maps with few regions. Memory: the stacked
tables (no larger than the output) or a few tables at a time (values and int32 cells), and
the output's int32 argmax, kept for the backward pass.
"""

from collections.abc import Iterator
from itertools import accumulate

import torch
from torch import nn

from cnnlab.nn.conv import IntPair, pair

Boxes = torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]


def _as_rois(boxes: Boxes, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(K, 5) rows [batch_index, x1, y1, x2, y2] from either of torchvision's box formats."""
    if isinstance(boxes, torch.Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"boxes as one tensor must be (K, 5), got {tuple(boxes.shape)}")
        return boxes.to(device=device, dtype=dtype)
    parts = []
    for i, b in enumerate(boxes):  # the boxes of image i, (K_i, 4)
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes[{i}] must be (K_i, 4), got {tuple(b.shape)}")
        b = b.to(device=device, dtype=dtype)
        parts.append(torch.cat([torch.full_like(b[:, :1], i), b], dim=1))
    return torch.cat(parts) if parts else torch.zeros(0, 5, dtype=dtype, device=device)


def _round_half_away(v: torch.Tensor) -> torch.Tensor:
    """C's round(): halves go away from zero (torch.round sends them to the even integer)."""
    whole = torch.trunc(v)
    frac = v - whole  # exact in floating point
    return whole + torch.where(frac.abs() >= 0.5, torch.sign(v), torch.zeros_like(v))


def _bin_edges(
    start: torch.Tensor, end: torch.Tensor, bins: int, limit: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last cell of each bin along one axis, (K, bins) each, in [0, limit].

    ``start`` and ``end`` (K,) are the region's rounded first and last cells, both included.
    """
    size = (end - start + 1).clamp(min=1)  # a reversed box counts as one cell
    bin_size = size.to(dtype) / bins  # computed in the input's precision, as the kernel does
    p = torch.arange(bins, dtype=dtype, device=start.device)
    lo = torch.floor(p * bin_size[:, None]).long() + start[:, None]
    hi = torch.ceil((p + 1) * bin_size[:, None]).long() + start[:, None]
    return lo.clamp(0, limit), hi.clamp(0, limit)


def _larger(
    a: torch.Tensor, a_at: torch.Tensor, b: torch.Tensor, b_at: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The larger of two maxima and the cell it is at; on a tie, the earlier cell.

    A cell is its index in the input, ``((n*C + c)*H + h)*W + w``: within one channel of one
    image "earlier" is row-major order, the order in which torchvision's kernel scans a bin,
    keeping the first maximum it meets.
    """
    take_b = (b > a) | ((b == a) & (b_at < a_at))
    return torch.where(take_b, b, a), torch.where(take_b, b_at, a_at)


_EXACT = 4  # bins up to this many cells long are read from a table of their own length


def _window_sizes(longest: int) -> list[int]:
    """Window lengths to tabulate along an axis whose longest bin is ``longest`` cells.

    Every length up to ``_EXACT``, then powers of two: a bin of any length L is covered by at
    most two windows of the largest tabulated length <= L (one from each end), as that is at
    least L/2.
    """
    sizes = list(range(1, min(longest, _EXACT) + 1))
    while 2 * sizes[-1] <= longest:
        sizes.append(2 * sizes[-1])
    return sizes


def _join(
    a: torch.Tensor, a_at: torch.Tensor, b: torch.Tensor, b_at: torch.Tensor, dim: int, shift: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows made of a window of table ``a`` followed, ``shift`` cells on, by one of ``b``.

    Each table holds the max of every window (indexed by its first cell), and its ``_at``
    twin the cell that max comes from. The result has as many positions as fit: ``b``'s
    count less ``shift``. Every cell of ``b``'s window comes after ``a``'s in row-major order
    (it lies to the right in the same row, or in rows below), so keeping ``a`` on a tie keeps
    the first maximum.
    """
    m = b.shape[dim] - shift
    a, a_at = a.narrow(dim, 0, m), a_at.narrow(dim, 0, m)
    b, b_at = b.narrow(dim, shift, m), b_at.narrow(dim, shift, m)
    later = b > a
    return torch.where(later, b, a), torch.where(later, b_at, a_at)


def _tables(
    value: torch.Tensor, at: torch.Tensor, dim: int, sizes: list[int]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The window maxima (and their cells) for each length in ``sizes`` along ``dim``.

    ``value`` and ``at`` are the windows of length 1 along ``dim``. Each table comes from the
    one before it by adding one cell, or, past ``_EXACT``, by joining two copies.
    """
    unit, unit_at, size = value, at, 1
    for target in sizes:
        while size < target:
            if target == size + 1:
                value, at = _join(value, at, unit, unit_at, dim, size)
                size += 1
            else:
                value, at = _join(value, at, value, at, dim, size)
                size *= 2
        yield value, at


def _axis_plan(
    start: torch.Tensor, end: torch.Tensor, limit: int
) -> tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """How to read the bins [start, end) along one axis, (K, bins) each, from the tables.

    Returns the window lengths to tabulate, then per bin: which of them to use, the first cell
    of the window at the bin's start and of the one ending at the bin's end (the same window
    when the bin's length is tabulated), and whether those two differ. An empty bin reads
    some cell in range; the caller zeroes its output.
    """
    length = (end - start).clamp(min=1)
    sizes = _window_sizes(int(length.max()))
    size_list = torch.tensor(sizes, device=start.device)
    table = torch.searchsorted(size_list, length, right=True) - 1
    size = size_list[table]
    first, last = start.clamp(max=limit - size), (end - size).clamp(min=0)
    return sizes, table, first, last, length > size


def _stacked(tables: list[torch.Tensor]) -> torch.Tensor:
    """Tables (N, h, w, C) stacked as rows: (sum of N*h*w, C), one window a row."""
    if len(tables) == 1:
        return tables[0].reshape(-1, tables[0].shape[-1])  # a view where it can be
    return torch.cat([t.reshape(-1, t.shape[-1]) for t in tables])


def _read(
    tables: list[tuple[torch.Tensor, torch.Tensor]], bins: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bins' maxima and their cells, (M, C) each, from ``tables`` (value, cell) pairs.

    ``bins`` holds the fields of M bins (see ``_bin_maxima``), ``bins["table"]`` numbering
    the tables given from 0.
    """
    n, shapes = tables[0][0].shape[0], [t.shape[1:3] for t, _ in tables]
    value, value_at = _stacked([v for v, _ in tables]), _stacked([at for _, at in tables])
    first = torch.tensor([0, *accumulate(n * h * w for h, w in shapes)], device=value.device)
    tall, pitch = torch.tensor([list(s) for s in shapes], device=value.device).unbind(1)
    t = bins["table"]
    origin, pitch = first[t] + bins["img"] * tall[t] * pitch[t], pitch[t]
    # the window that starts at cell (r, col) of its table is row origin + r * pitch + col
    i = origin + bins["top"] * pitch + bins["left"]
    best, best_at = value.index_select(0, i), value_at.index_select(0, i)
    # a long bin also reads the windows that end where it ends, and keeps the largest max
    for r, col, need in [
        ("bottom", "left", bins["two_h"]),
        ("top", "right", bins["two_w"]),
        ("bottom", "right", bins["two_h"] & bins["two_w"]),
    ]:
        some = need.nonzero().squeeze(1)
        if len(some):
            i = origin[some] + bins[r][some] * pitch[some] + bins[col][some]
            more, more_at = value.index_select(0, i), value_at.index_select(0, i)
            more, more_at = _larger(best[some], best_at[some], more, more_at)
            best.index_copy_(0, some, more)
            best_at.index_copy_(0, some, more_at)
    return best, best_at


def _bin_maxima(
    x: torch.Tensor,
    batch: torch.Tensor,
    rows: tuple[torch.Tensor, torch.Tensor],
    cols: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each bin's maximum and where it is, (K*oh*ow, C) each, bin by bin (row-major per region).

    ``x`` is the map (N, C, H, W); ``batch`` (K,) the image of each region; ``rows`` and
    ``cols`` the bins' edges from ``_bin_edges``, (K, oh) and (K, ow). The places are indices
    into ``x.reshape(-1)`` (int32 unless ``x`` is huge); an empty bin gets the value 0 and the
    place N*C*H*W, one past the end.
    """
    n, c, height, width = x.shape
    k, oh, ow = rows[0].shape[0], rows[0].shape[1], cols[0].shape[1]
    index_dtype = torch.int32 if x.numel() < 2**31 - 1 else torch.int64
    if k == 0:
        return x.new_zeros(0, c), torch.zeros(0, c, dtype=index_dtype, device=x.device)
    sizes_h, table_h, top, bottom, two_h = _axis_plan(*rows, height)  # (K, oh) each
    sizes_w, table_w, left, right, two_w = _axis_plan(*cols, width)  # (K, ow) each

    def per_bin(t: torch.Tensor, axis: int) -> torch.Tensor:  # (K, oh) or (K, ow) -> (K*oh*ow,)
        return t.unsqueeze(axis).expand(k, oh, ow).reshape(-1)

    bins = {  # (K*oh*ow,) each
        "img": batch[:, None, None].expand(k, oh, ow).reshape(-1),
        "table": per_bin(table_w, 1) * len(sizes_h) + per_bin(table_h, 2),  # in build order
        "top": per_bin(top, 2),
        "bottom": per_bin(bottom, 2),
        "left": per_bin(left, 1),
        "right": per_bin(right, 1),
        "two_h": per_bin(two_h, 2),  # covered by two windows along the rows
        "two_w": per_bin(two_w, 1),  # ... along the columns
    }
    # the tables, built widths outer, heights inner; the window positions in each
    shapes = [(height - sh + 1, width - sw + 1) for sw in sizes_w for sh in sizes_h]
    # channels last, so that a window's C maxima lie side by side and are read as one row
    cell = torch.arange(x.numel(), dtype=index_dtype, device=x.device).view(x.shape)
    strips = _tables(x.permute(0, 2, 3, 1), cell.permute(0, 2, 3, 1), 2, sizes_w)  # 1 row high
    tables = (t for strip in strips for t in _tables(*strip, 1, sizes_h))

    if sum(n * h * w for h, w in shapes) <= k * oh * ow:
        # the tables are no larger than the output: stack them all and read every bin at once
        maxima, argmax = _read(list(tables), bins)
    else:  # one table at a time, each for the bins that read it
        maxima = x.new_empty(k * oh * ow, c)
        argmax = torch.empty_like(maxima, dtype=index_dtype)
        order = bins["table"].argsort()
        ends = [0, *accumulate(torch.bincount(bins["table"], minlength=len(shapes)).tolist())]
        for t, (value, value_at) in enumerate(tables):
            some = order[ends[t] : ends[t + 1]]
            if len(some):
                part = {key: field[some] for key, field in bins.items()}
                part["table"] = torch.zeros_like(part["table"])
                best, best_at = _read([(value, value_at)], part)
                maxima.index_copy_(0, some, best)
                argmax.index_copy_(0, some, best_at)
    empty = ((rows[1] <= rows[0])[:, :, None] | (cols[1] <= cols[0])[:, None, :]).reshape(-1)
    empty = empty.nonzero().squeeze(1)
    return maxima.index_fill_(0, empty, 0.0), argmax.index_fill_(0, empty, x.numel())


class RoIMaxPoolFunction(torch.autograd.Function):
    """``RoIMaxPoolFunction.apply(x, batch, rows, cols)``: the bins' maxima, (K, C, oh, ow).

    ``x`` (N, C, H, W); ``batch``, ``rows`` and ``cols`` as for ``_bin_maxima``. The backward
    pass is the kernel's: each output's gradient is added at its argmax (the same cell may
    collect from several bins and regions); an empty bin's goes to a spare cell, dropped.
    """

    @staticmethod
    def forward(ctx, x, batch, rows, cols):
        maxima, argmax = _bin_maxima(x, batch, rows, cols)  # (K*oh*ow, C) each
        ctx.save_for_backward(argmax)
        ctx.input_shape = x.shape
        k, oh, ow = rows[0].shape[0], rows[0].shape[1], cols[0].shape[1]
        return maxima.view(k, oh, ow, x.shape[1]).permute(0, 3, 1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved_tensors
        grad = grad.permute(0, 2, 3, 1).reshape(-1)  # laid out as argmax: bin by bin
        grad_x = grad.new_zeros(ctx.input_shape.numel() + 1)  # + the empty bins' cell
        grad_x.index_add_(0, argmax.reshape(-1), grad)
        return grad_x[:-1].view(ctx.input_shape), None, None, None


def roi_pool(
    input: torch.Tensor,
    boxes: Boxes,
    output_size: IntPair,
    spatial_scale: float = 1.0,
) -> torch.Tensor:
    """Max-pool each region of ``input`` (N, C, H, W) into an ``output_size`` grid.

    Called as ``torchvision.ops.roi_pool``: ``boxes`` is a (K, 5) tensor of rows
    [batch_index, x1, y1, x2, y2], or a list with one (K_i, 4) tensor of (x1, y1, x2, y2) per
    image; box coordinates are in image pixels, and ``spatial_scale`` maps them onto the map.
    Returns (K, C, oh, ow), the regions in the order given (image by image for a list),
    differentiable in ``input`` (not in the boxes). The input is taken to be finite: the
    kernel's handling of NaN (skipped) and of a bin all -inf (-3.4e38) is not reproduced.
    """
    oh, ow = pair(output_size)
    if oh < 1 or ow < 1:
        raise ValueError(f"output_size must be positive, got {(oh, ow)}")
    if input.dim() != 4:
        raise ValueError(f"input must be (N, C, H, W), got {tuple(input.shape)}")
    n, _, height, width = input.shape
    dtype = torch.promote_types(input.dtype, torch.float32)  # the box arithmetic's precision
    rois = _as_rois(boxes, dtype, input.device)
    batch = rois[:, 0].long()
    if len(batch) and (int(batch.min()) < 0 or int(batch.max()) >= n):
        raise ValueError(f"batch indices must lie in [0, {n - 1}]")
    scale = torch.tensor(spatial_scale, dtype=dtype, device=rois.device)
    x1, y1, x2, y2 = _round_half_away(rois[:, 1:] * scale).long().unbind(1)  # cells, (K,) each
    rows = _bin_edges(y1, y2, oh, height, dtype)
    cols = _bin_edges(x1, x2, ow, width, dtype)
    return RoIMaxPoolFunction.apply(input, batch, rows, cols)  # (K, C, oh, ow)


class RoIPool(nn.Module):
    """Max-pools each region of interest into an ``output_size`` grid (see ``roi_pool``)."""

    def __init__(self, output_size: IntPair, spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, input: torch.Tensor, boxes: Boxes) -> torch.Tensor:
        return roi_pool(input, boxes, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
