"""Textbook convolution and pooling against torch's, and the lecture's worked examples."""

import itertools

import pytest
import torch
from torch.nn import functional as F

from cnnlab import nn as tnn
from cnnlab.nn import functional as tf

# (input (B, C, H, W), weight (O, C, kh, kw), stride, padding)
CONV_CASES = [
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 0),
    ((2, 3, 9, 7), (5, 3, 3, 3), 2, 1),  # non-square input, stride 2, padding 1
    ((1, 4, 6, 10), (2, 4, 1, 1), 1, 0),  # 1x1 kernel
    ((3, 2, 11, 8), (6, 2, 5, 3), (2, 3), (2, 1)),  # pairs; the last rows are dropped
    ((2, 1, 7, 7), (1, 1, 3, 3), 3, 0),  # the filter does not fit: torch rounds down
]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding"), CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_equals_torch_in_output_and_gradients(x_shape, w_shape, stride, padding, with_bias):
    torch.manual_seed(0)
    x = torch.randn(x_shape, requires_grad=True)
    w = torch.randn(w_shape, requires_grad=True)
    b = torch.randn(w_shape[0], requires_grad=True) if with_bias else None
    inputs = [t for t in (x, w, b) if t is not None]
    ours = tf.conv2d(x, w, b, stride, padding)
    theirs = F.conv2d(x, w, b, stride, padding)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(theirs)
    for a, e in zip(
        torch.autograd.grad(ours, inputs, g), torch.autograd.grad(theirs, inputs, g), strict=True
    ):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4)


def test_conv2d_worked_example_is_cross_correlation():
    image = torch.tensor([[0.0, 80, 40], [20, 40, 0], [0, 0, 40]]).reshape(1, 1, 3, 3)
    kernel = torch.tensor([[0.0, 0.25], [0.5, 1]])  # the lecture's k; the filter is k flipped
    filt = kernel.flip(0, 1)  # [[1, .5], [.25, 0]], what slides over the image
    expected = torch.tensor([[45.0, 110], [40, 40]]).reshape(1, 1, 2, 2)
    assert torch.equal(tf.conv2d(image, filt.reshape(1, 1, 2, 2)), expected)
    assert torch.equal(F.conv2d(image, filt.reshape(1, 1, 2, 2)), expected)


@pytest.mark.parametrize(("stride", "size"), [(1, 5), (2, 3)])
def test_output_size_of_7x7_input_and_3x3_filter(stride, size):
    assert tf.conv_output_size(7, 3, stride) == size
    out = tf.conv2d(torch.zeros(1, 1, 7, 7), torch.zeros(1, 1, 3, 3), stride=stride)
    assert out.shape[-2:] == (size, size)


def test_output_size_refuses_a_filter_that_does_not_fit_showing_the_formula():
    with pytest.raises(ValueError, match=r"\(7 - 3 \+ 2\*0\)/3 \+ 1 = 2\.33"):
        tf.conv_output_size(7, 3, stride=3)
    with pytest.raises(ValueError, match="does not fit"):
        tf.conv_output_size(3, 5)


def test_padding_keeps_the_size_and_ten_filters_give_ten_maps():
    assert tf.conv_output_size(7, 3, 1, padding=1) == 7  # pad (F - 1)/2
    assert tf.conv_output_size(32, 5, 1, padding=2) == 32  # (32 + 2*2 - 5)/1 + 1
    conv = tnn.Conv2d(3, 10, 5, stride=1, padding=2)
    assert conv(torch.randn(1, 3, 32, 32)).shape == (1, 10, 32, 32)  # 32x32x10


@pytest.mark.parametrize("dilation", [1, 2, 3, (1, 2)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_dilated_conv2d_equals_torch(dilation, stride, padding):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 13, 17)  # non-square, so height and width cannot be swapped
    w = torch.randn(4, 3, 3, 3)
    b = torch.randn(4)
    ours = tf.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    theirs = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_dilated_conv2d_gradient_equals_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 13, 17, requires_grad=True)
    w = torch.randn(4, 3, 3, 2, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    settings = {"stride": (2, 1), "padding": (1, 2), "dilation": (3, 2)}
    ours = tf.conv2d(x, w, b, **settings)
    theirs = F.conv2d(x, w, b, **settings)
    g = torch.randn_like(theirs)
    for a, e in zip(
        torch.autograd.grad(ours, (x, w, b), g),
        torch.autograd.grad(theirs, (x, w, b), g),
        strict=True,
    ):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_output_size_with_dilation_is_torch_shape_where_the_filter_fits(dilation):
    fits = 0
    for n, f, stride, padding in itertools.product(range(4, 10), (1, 2, 3), (1, 2, 3), (0, 1, 2)):
        span = n + 2 * padding - (dilation * (f - 1) + 1)  # the rule's numerator
        if span < 0 or span % stride:
            with pytest.raises(ValueError, match="does not fit"):
                tf.conv_output_size(n, f, stride, padding, dilation)
            continue
        size = tf.conv_output_size(n, f, stride, padding, dilation)
        x, w = torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f)
        assert F.conv2d(x, w, None, stride, padding, dilation).shape[-2:] == (size, size)
        fits += 1
    assert 0 < fits < 6 * 3 * 3 * 3  # both branches were taken


def test_output_size_with_dilation_shows_the_effective_size_and_validates_it():
    # 3x3 at rate 2 spans 5 pixels: (7 - 5 + 2*0)/3 + 1 = 1.67
    with pytest.raises(ValueError, match=r"effective size 2\*\(3 - 1\) \+ 1 = 5\)"):
        tf.conv_output_size(7, 3, stride=3, dilation=2)
    with pytest.raises(ValueError, match=r"\(7 - 5 \+ 2\*0\)/3 \+ 1 = 1\.67"):
        tf.conv_output_size(7, 3, stride=3, dilation=2)
    with pytest.raises(ValueError, match="dilation >= 1"):
        tf.conv_output_size(7, 3, dilation=0)


@pytest.mark.parametrize("rate", [1, 2, 6, 12])
def test_deeplab_atrous_3x3_with_padding_equal_to_the_rate_keeps_the_size(rate):
    assert tf.conv_output_size(33, 3, 1, padding=rate, dilation=rate) == 33
    conv = tnn.Conv2d(2, 4, 3, padding=rate, dilation=rate)
    assert conv(torch.randn(1, 2, 33, 33)).shape == (1, 4, 33, 33)
    assert conv.weight.shape == (4, 2, 3, 3)  # 9 weights per channel at every rate


# (input shape, kernel_size, stride, padding)
POOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0),
    ((2, 3, 9, 7), 3, 2, 1),  # non-square, overlapping windows, padding
    ((1, 2, 7, 10), (3, 2), (1, 2), (1, 1)),
    ((2, 1, 5, 5), 2, None, 0),  # odd size: the last row and column are dropped
    ((1, 4, 6, 6), 1, 1, 0),
]


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), POOL_CASES)
@pytest.mark.parametrize(
    ("ours", "theirs"), [(tf.max_pool2d, F.max_pool2d), (tf.avg_pool2d, F.avg_pool2d)]
)
def test_pooling_equals_torch_in_output_and_gradient(shape, kernel, stride, padding, ours, theirs):
    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=True)
    a, e = ours(x, kernel, stride, padding), theirs(x, kernel, stride, padding)
    torch.testing.assert_close(a, e)
    g = torch.randn_like(e)
    torch.testing.assert_close(torch.autograd.grad(a, x, g)[0], torch.autograd.grad(e, x, g)[0])


def test_max_pool_sends_the_gradient_of_a_tie_where_torch_does():
    x = torch.relu(torch.randn(2, 3, 8, 8)).requires_grad_()  # many zeros: ties in windows
    a, e = tf.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, 1)
    g = torch.randn_like(e)
    torch.testing.assert_close(torch.autograd.grad(a, x, g)[0], torch.autograd.grad(e, x, g)[0])


def test_conv_and_pool_pass_gradcheck_in_float64():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: tf.conv2d(x, w, b, 2, 1), (x, w, b))
    assert torch.autograd.gradcheck(lambda x: tf.max_pool2d(x, 2, 1, 1), (x,))
    assert torch.autograd.gradcheck(lambda x: tf.avg_pool2d(x, 3, 2, 1), (x,))


def test_conv2d_module_state_dict_moves_to_torch_and_back():
    ours, theirs = tnn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.Conv2d(3, 8, 3, 2, 1)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    ours.load_state_dict(torch.nn.Conv2d(3, 8, 3).state_dict())


def test_conv2d_module_initialises_like_torch():
    torch.manual_seed(0)
    ours = tnn.Conv2d(4, 6, (3, 5))
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(4, 6, (3, 5))
    torch.testing.assert_close(ours.state_dict(), theirs.state_dict())


def test_dilated_conv2d_module_equals_torch_module_with_the_same_weights():
    settings = {"stride": (1, 2), "padding": (2, 3), "dilation": (2, 3)}
    ours = tnn.Conv2d(3, 5, (3, 2), **settings)
    theirs = torch.nn.Conv2d(3, 5, (3, 2), **settings)
    assert (ours.stride, ours.padding, ours.dilation) == (
        theirs.stride,
        theirs.padding,
        theirs.dilation,
    )
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 13, 17)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_pool_modules_equal_torch_modules():
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(tnn.MaxPool2d(3, 2, 1)(x), torch.nn.MaxPool2d(3, 2, 1)(x))
    torch.testing.assert_close(tnn.AvgPool2d(2)(x), torch.nn.AvgPool2d(2)(x))


@pytest.mark.parametrize(("channels", "filters", "groups"), [(4, 6, 2), (6, 9, 3), (4, 4, 4)])
def test_grouped_conv2d_equals_torch_in_output_and_gradients(channels, filters, groups):
    x = torch.randn(2, channels, 9, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(filters, channels // groups, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(filters, dtype=torch.float64, requires_grad=True)
    ours = tf.conv2d(x, w, b, stride=2, padding=1, groups=groups)
    theirs = F.conv2d(x, w, b, stride=2, padding=1, groups=groups)
    torch.testing.assert_close(ours, theirs)
    grads = [torch.autograd.grad(out.square().sum(), (x, w, b)) for out in (ours, theirs)]
    for g_ours, g_theirs in zip(*grads, strict=True):
        torch.testing.assert_close(g_ours, g_theirs)


def test_grouped_conv2d_reads_only_its_own_channels():
    """Filter group 0 must not see the second half of the channels: changing them leaves the
    first half of the output maps as it was."""
    layer = tnn.Conv2d(4, 6, 3, padding=1, groups=2)
    assert layer.weight.shape == (6, 2, 3, 3)
    x = torch.randn(1, 4, 5, 5)
    changed = x.clone()
    changed[:, 2:] += 1.0
    torch.testing.assert_close(layer(x)[:, :3], layer(changed)[:, :3])
    assert not torch.allclose(layer(x)[:, 3:], layer(changed)[:, 3:])


def test_grouped_conv2d_refuses_channels_that_do_not_split():
    with pytest.raises(ValueError, match="groups=2"):
        tnn.Conv2d(3, 6, 3, groups=2)


@pytest.mark.parametrize("side", range(5, 14))
@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(3, 2, 0), (3, 2, 1), (2, 2, 0), (5, 3, 2)]
)
def test_max_pool_ceil_mode_equals_torch(side, kernel, stride, padding):
    x = torch.randn(2, 3, side, side + 1, dtype=torch.float64, requires_grad=True)
    ours = tf.max_pool2d(x, kernel, stride, padding, ceil_mode=True)
    theirs = F.max_pool2d(x, kernel, stride, padding, ceil_mode=True)
    torch.testing.assert_close(ours, theirs)
    g_ours, g_theirs = (torch.autograd.grad(out.sum(), x)[0] for out in (ours, theirs))
    torch.testing.assert_close(g_ours, g_theirs)
