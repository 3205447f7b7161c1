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
  bin_h = height / oh in floating point; neighbouring bins may share a row; the same for
  columns; then the rows and columns are clipped to the map;
- the output is the bin's largest value; a bin left empty by the clipping gives 0;
- the gradient of each output goes to the cell that gave its maximum (the first in row-major
  order on a tie, as torchvision's strict ``>`` scan picks); an empty bin passes none.

The rounding of the corners and of the bin edges is a quantisation: the pooled grid can sit up
to half a cell (8 input pixels at stride 16) away from the box, which costs localisation
accuracy. Mask R-CNN's RoIAlign (He et al., 2017) removed it by keeping the coordinates
fractional and sampling the map bilinearly.

How the maxima are found. Scanning every bin, as the C++ kernel does, is a Python loop of
K*oh*ow steps. Instead, a table of running maxima is built over the whole map: the max of
every 2^i x 2^j window, with the cell it comes from, for every power-of-two size up to the
largest bin (each size from one half its size: two windows side by side). Any bin of h x w
cells is covered by four such windows of 2^floor(log2 h) x 2^floor(log2 w) cells, one at each
corner; they overlap, which a max does not mind, so the bin's max is the largest of the four.
This finds the argmax of every bin without gradient; the output is then read from the input at
those cells with a differentiable gather, so autograd sends each output's gradient to its
argmax. Cost: time O(Lh * Lw * N*H*W*C) for the tables plus O(K*oh*ow*C) for the look-ups,
where Lh = floor(log2(tallest bin)) + 1 (3 for bins of 4 to 7 rows) and likewise Lw; memory a
few copies of the input at a time plus the (K, C, oh, ow) output and its int64 argmax.
"""

from collections.abc import Iterator

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

    Cells are numbered row by row (``(n*H + h)*W + w``), so "earlier" is row-major order, the
    order in which torchvision's kernel scans a bin and keeps the first maximum it meets.
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

    Each table holds the max of every window (indexed by its first cell) and the cell ``_at``
    it comes from. The result has as many positions as fit: ``b``'s count less ``shift``.
    Every cell of ``b``'s window comes after ``a``'s in row-major order (it lies to the right
    in the same row, or in rows below), so keeping ``a`` on a tie keeps the first maximum.
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


def _bin_argmax(
    x: torch.Tensor,
    batch: torch.Tensor,
    rows: tuple[torch.Tensor, torch.Tensor],
    cols: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Where each bin's maximum is: (K*oh*ow, C) indices of rows of ``x.reshape(-1, C)``.

    An empty bin gets some cell in range; the caller points it elsewhere.

    ``x`` is the map channels-last, (N, H, W, C), without gradient; ``batch`` (K,) the image of
    each region; ``rows`` and ``cols`` the bins' edges from ``_bin_edges``, (K, oh) and (K, ow).
    """
    n, height, width, c = x.shape
    k, oh, ow = rows[0].shape[0], rows[0].shape[1], cols[0].shape[1]
    argmax = torch.empty(k * oh * ow, c, dtype=torch.long, device=x.device)
    if k == 0:
        return argmax
    sizes_h, table_h, top, bottom, two_h = _axis_plan(*rows, height)  # (K, oh) each
    sizes_w, table_w, left, right, two_w = _axis_plan(*cols, width)  # (K, ow) each

    def per_bin(t: torch.Tensor, axis: int) -> torch.Tensor:  # (K, oh) or (K, ow) -> (K*oh*ow,)
        return t.unsqueeze(axis).expand(k, oh, ow).reshape(-1)

    img = batch[:, None, None].expand(k, oh, ow).reshape(-1)
    top, bottom, two_h = per_bin(top, 2), per_bin(bottom, 2), per_bin(two_h, 2)
    left, right, two_w = per_bin(left, 1), per_bin(right, 1), per_bin(two_w, 1)
    # sort the bins by the table they read and by how many windows they need from it
    group = ((per_bin(table_h, 2) * len(sizes_w) + per_bin(table_w, 1)) * 2 + two_h) * 2 + two_w
    order = group.argsort()
    counts = torch.bincount(group, minlength=4 * len(sizes_h) * len(sizes_w)).tolist()
    ends = [0]
    for count in counts:
        ends.append(ends[-1] + count)

    cell = torch.arange(n * height * width, dtype=torch.int32, device=x.device)
    cell = cell.view(n, height, width, 1)  # int32: half the memory traffic of int64
    strips = _tables(x, cell.expand(n, height, width, c), 2, sizes_w)  # 1-row windows
    for j, (strip, strip_at) in enumerate(strips):
        for i, (win, win_at) in enumerate(_tables(strip, strip_at, 1, sizes_h)):
            hi, wj = win.shape[1], win.shape[2]  # where windows of this size can start
            win, win_at = win.reshape(-1, c), win_at.reshape(-1, c)
            for kind in range(4):  # two windows along the rows (bit 2), the columns (bit 1)
                g = (i * len(sizes_w) + j) * 4 + kind
                sel = order[ends[g] : ends[g + 1]]  # the bins of this group
                if not len(sel):
                    continue
                b, r0, r1, c0, c1 = img[sel], top[sel], bottom[sel], left[sel], right[sel]
                windows = [(r0, c0)]
                if kind & 2:
                    windows.append((r1, c0))
                if kind & 1:
                    windows += [(r, c1) for r, _ in windows]
                cells = [(b * hi + r) * wj + col for r, col in windows]  # rows of win
                best_at = win_at.index_select(0, cells[0])
                if len(cells) > 1:
                    best = win.index_select(0, cells[0])
                    for more in cells[1:]:
                        best, best_at = _larger(
                            best, best_at, win.index_select(0, more), win_at.index_select(0, more)
                        )
                argmax.index_copy_(0, sel, best_at.long())
    return argmax


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
    Returns (K, C, oh, ow), the regions in the order given (image by image for a list).
    """
    oh, ow = pair(output_size)
    if oh < 1 or ow < 1:
        raise ValueError(f"output_size must be positive, got {(oh, ow)}")
    if input.dim() != 4:
        raise ValueError(f"input must be (N, C, H, W), got {tuple(input.shape)}")
    n, c, height, width = input.shape
    dtype = torch.promote_types(input.dtype, torch.float32)  # the box arithmetic's precision
    rois = _as_rois(boxes, dtype, input.device)
    batch = rois[:, 0].long()
    if len(batch) and (int(batch.min()) < 0 or int(batch.max()) >= n):
        raise ValueError(f"batch indices must lie in [0, {n - 1}]")
    scale = torch.tensor(spatial_scale, dtype=dtype, device=rois.device)
    x1, y1, x2, y2 = _round_half_away(rois[:, 1:] * scale).long().unbind(1)  # cells, (K,) each
    rows = _bin_edges(y1, y2, oh, height, dtype)
    cols = _bin_edges(x1, x2, ow, width, dtype)

    x = input.permute(0, 2, 3, 1).reshape(-1, c)  # (N*H*W, C): each cell's channels together
    with torch.no_grad():
        argmax = _bin_argmax(x.detach().view(n, height, width, c), batch, rows, cols)
        empty = (rows[1] <= rows[0])[:, :, None] | (cols[1] <= cols[0])[:, None, :]
        argmax.index_fill_(0, empty.reshape(-1).nonzero().squeeze(1), n * height * width)
    cells = torch.cat([x, x.new_zeros(1, c)])  # and an extra cell of zeros for the empty bins
    out = cells.gather(0, argmax)  # the maxima, differentiably: (K*oh*ow, C)
    return out.view(len(rois), oh, ow, c).permute(0, 3, 1, 2).contiguous()  # (K, C, oh, ow)


class RoIPool(nn.Module):
    """Max-pools each region of interest into an ``output_size`` grid (see ``roi_pool``)."""

    def __init__(self, output_size: IntPair, spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, input: torch.Tensor, boxes: Boxes) -> torch.Tensor:
        return roi_pool(input, boxes, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
