"""RoI max pooling written from its definition against torchvision's kernel."""

import pytest
import torch
import torchvision

from cnnlab import nn as tnn
from cnnlab.nn import roi_pool


def random_rois(k, n, size, margin=0.25, dtype=torch.float32, seed=0):
    """(k, 5) rows [image, x1, y1, x2, y2] in image pixels, some reaching past the border."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = -margin * size, (1 + margin) * size
    corners = (torch.rand(k, 2, 2, generator=g, dtype=dtype) * (hi - lo) + lo).sort(1).values
    image = torch.randint(n, (k, 1), generator=g).to(dtype)
    return torch.cat([image, corners[:, 0], corners[:, 1]], dim=1)  # x1 <= x2, y1 <= y2


def distinct(shape, dtype=torch.float32, seed=0):
    """An input with no two values equal, so each bin has one maximum."""
    g = torch.Generator().manual_seed(seed)
    numel = torch.Size(shape).numel()
    return (torch.randperm(numel, generator=g).to(dtype) - numel / 2).reshape(shape)


def assert_same_as_torchvision(x, boxes, output_size, scale, grad=True):
    x = x.detach().requires_grad_(grad)
    # torchvision wants boxes of the input's dtype (ours converts them)
    boxes = boxes.to(x.dtype) if torch.is_tensor(boxes) else [b.to(x.dtype) for b in boxes]
    ours = roi_pool(x, boxes, output_size, scale)
    theirs = torchvision.ops.roi_pool(x, boxes, output_size, scale)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    if grad and theirs.numel():
        g = torch.randn_like(theirs)
        exact = x.dtype == torch.float64  # float32 sums of many overlaps may differ in order
        torch.testing.assert_close(
            torch.autograd.grad(ours, x, g)[0],
            torch.autograd.grad(theirs, x, g)[0],
            rtol=0 if exact else 1e-5,
            atol=1e-12 if exact else 1e-5,
        )
    return ours


@pytest.mark.parametrize("output_size", [7, (2, 3)])
@pytest.mark.parametrize(
    ("scale", "shape", "image_size"),
    [(1.0, (2, 3, 12, 15), 15), (1 / 16, (3, 4, 9, 11), 176), (0.5, (2, 5, 10, 8), 20)],
)
def test_equals_torchvision_on_random_boxes_in_output_and_gradient(
    scale, shape, image_size, output_size
):
    x = distinct(shape, torch.float64)
    rois = random_rois(40, shape[0], image_size, dtype=torch.float64)
    out = assert_same_as_torchvision(x, rois, output_size, scale)
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    assert out.shape == (40, shape[1], oh, ow)


def test_equals_torchvision_in_float32_with_many_overlapping_regions():
    x = torch.randn(2, 8, 8, 8)
    assert_same_as_torchvision(x, random_rois(128, 2, 128), 7, 1 / 16)


def test_bins_longer_than_the_tabulated_lengths_use_two_overlapping_windows():
    # bins of up to 48 cells: past the lengths with a table of their own (powers of two)
    x = distinct((2, 3, 48, 40), torch.float64)
    rois = random_rois(30, 2, 48, margin=0.1, dtype=torch.float64, seed=1)
    rois = torch.cat([rois, torch.tensor([[0, 0, 0, 39, 47], [1, 3, 2, 37, 46.0]])])
    for output_size in [1, 2, (3, 1), 5]:
        assert_same_as_torchvision(x, rois, output_size, 1.0)


@pytest.mark.parametrize("regions", [600, 5])
def test_bins_are_read_all_at_once_or_table_by_table_alike(regions):
    # 16 tables of at most 10 x 10 windows: read stacked together when the output
    # (regions x 2 x 2 bins) is at least as large, else table by table
    x = distinct((1, 2, 10, 10), torch.float64)
    rois = random_rois(regions, 1, 10, margin=0.1, dtype=torch.float64, seed=6)
    rois = torch.cat([rois, torch.tensor([[0, 0, 0, 9, 9], [0, 0, 1, 8, 9.0]])])  # 5-cell bins
    assert_same_as_torchvision(x, rois, 2, 1.0)


def test_boxes_at_and_beyond_the_border():
    x = distinct((1, 2, 10, 12))
    rois = torch.tensor(
        [
            [0, 0, 0, 11, 9],  # the whole map, edge to edge
            [0, -6, -4, 3, 2],  # sticks out top-left
            [0, 9, 7, 20, 30],  # sticks out bottom-right
            [0, -20, -20, 40, 40],  # contains the map
            [0, 12, 10, 15, 14],  # just past the bottom-right corner: every bin empty
            [0, -9, -9, -1, -1],  # entirely above-left: every bin empty
        ]
    )
    out = assert_same_as_torchvision(x, rois, 3, 1.0)
    assert (out[4:] == 0).all()


def test_boxes_smaller_than_a_bin():
    x = distinct((2, 3, 9, 9))
    rois = torch.tensor(
        [
            [0, 4, 4, 4, 4],  # one cell
            [1, 0, 8, 0, 8],  # one cell in a corner
            [0, 2, 3, 2, 7],  # width 0: a one-cell-wide column
            [1, 1, 5, 6, 5],  # height 0
            [0, 6, 6, 3, 2],  # reversed: counts as one cell
            [1, 2.4, 2.6, 3.4, 3.6],  # fractional: rounds to cells 2..3 and 3..4
        ]
    )
    for output_size in [7, (2, 3), 1]:
        assert_same_as_torchvision(x, rois, output_size, 1.0)
    assert_same_as_torchvision(x, rois, 7, 0.5)


def test_coordinates_round_half_away_from_zero_like_the_kernel():
    # torch.round(2.5) == 2, but the C++ kernel's round(2.5) == 3: the bins differ
    x = distinct((1, 1, 12, 12))
    halves = torch.arange(-1.5, 12, 1.0)
    rois = torch.stack(
        [torch.zeros_like(halves), halves, halves.flip(0).clamp(min=0.5), halves + 3, halves + 1],
        dim=1,
    )
    assert_same_as_torchvision(x, rois, (3, 2), 1.0)
    assert_same_as_torchvision(x, rois * torch.tensor([1, 2, 2, 2, 2]), 2, 0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bin_edges_are_computed_in_the_precision_of_the_input(dtype):
    # 29 cells in 7 bins: 7 * (29 / 7) is 29 in float32 but a little over 29 in float64, so
    # the kernel's last bin ends after column 28 for float32 and after column 29 for float64
    x = torch.arange(40.0, dtype=dtype).reshape(1, 1, 1, 40)
    rois = torch.tensor([[0, 0, 0, 28, 0]], dtype=dtype)
    out = assert_same_as_torchvision(x, rois, (1, 7), 1.0)
    assert out[0, 0, 0, -1] == (28 if dtype == torch.float32 else 29)


def test_a_list_of_boxes_per_image_is_the_same_as_the_indexed_tensor():
    x = distinct((3, 2, 10, 10))
    rois = random_rois(20, 3, 10, seed=2)
    rois = rois[rois[:, 0].argsort(stable=True)]  # image by image, as a list gives them
    per_image = [rois[rois[:, 0] == i, 1:] for i in range(3)]
    from_list = assert_same_as_torchvision(x, per_image, (2, 3), 1.0)
    torch.testing.assert_close(from_list, roi_pool(x, rois, (2, 3), 1.0), rtol=0, atol=0)


def test_gradient_goes_to_each_bins_first_maximum_as_torchvision_sends_it():
    # many equal values: torchvision keeps the first maximum of a bin in row-major order
    x = torch.randint(0, 3, (2, 3, 11, 13)).double()
    rois = random_rois(30, 2, 13, dtype=torch.float64, seed=3)
    assert_same_as_torchvision(x, rois, (3, 4), 1.0)
    assert_same_as_torchvision(x, rois, 1, 1.0)  # long bins: two windows a side, which tie
    assert_same_as_torchvision(torch.relu(torch.randn(2, 3, 30, 30)), rois, 2, 2.0)


def test_gradient_of_a_bin_lands_on_its_maximum():
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)
    with torch.no_grad():
        x[0, 0, 1, 2] = 5.0
    out = roi_pool(x, [torch.tensor([[0.0, 0, 3, 3]])], 1)
    out.sum().backward()
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, 1, 2] = 1.0
    assert out.item() == 5.0 and torch.equal(x.grad, expected)


def test_passes_gradcheck_in_float64_and_takes_any_memory_layout():
    x = distinct((2, 2, 5, 6), torch.float64).div(10).requires_grad_()
    rois = random_rois(5, 2, 6, dtype=torch.float64, seed=5)
    assert torch.autograd.gradcheck(lambda x: roi_pool(x, rois, (2, 3)), (x,))
    channels_last = x.detach().to(memory_format=torch.channels_last)
    torch.testing.assert_close(
        roi_pool(channels_last, rois, 3), roi_pool(x.detach(), rois, 3), rtol=0, atol=0
    )


def test_no_regions_give_an_empty_output():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    for boxes in [torch.zeros(0, 5), [torch.zeros(0, 4), torch.zeros(0, 4)], []]:
        out = roi_pool(x, boxes, (2, 3))
        assert out.shape == (0, 3, 2, 3)
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.equal(grad, torch.zeros_like(x))
    assert torchvision.ops.roi_pool(x, torch.zeros(0, 5), (2, 3)).shape == (0, 3, 2, 3)


def test_module_equals_torchvision_module_and_prints_its_settings():
    x = distinct((2, 4, 16, 16))
    rois = random_rois(10, 2, 32, seed=4)
    ours, theirs = tnn.RoIPool((2, 3), 0.5), torchvision.ops.RoIPool((2, 3), 0.5)
    torch.testing.assert_close(ours(x, rois), theirs(x, rois), rtol=0, atol=0)
    assert repr(ours) == "RoIPool(output_size=(2, 3), spatial_scale=0.5)"
    assert repr(tnn.RoIPool(7)) == "RoIPool(output_size=7, spatial_scale=1.0)"


def test_refuses_malformed_boxes_and_batch_indices():
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        roi_pool(x, torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match=r"boxes\[1\]"):
        roi_pool(x, [torch.zeros(1, 4), torch.zeros(1, 5)], 2)
    with pytest.raises(ValueError, match="batch indices"):
        roi_pool(x, torch.tensor([[2.0, 0, 0, 1, 1]]), 2)
