"""Textbook batch normalisation against torch's: outputs, gradients, running statistics."""

import pytest
import torch

from cnnlab import nn as tnn
from cnnlab.nn import BatchNormFunction

# (ours, torch's, input shape)
CASES = [
    (tnn.BatchNorm2d, torch.nn.BatchNorm2d, (8, 3, 5, 4)),
    (tnn.BatchNorm1d, torch.nn.BatchNorm1d, (16, 5)),
    (tnn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 5, 7)),
]


def pair(ours_cls, torch_cls, **kwargs):
    """Ours and torch's with the same (non-trivial) gamma and beta."""
    channels = 3 if ours_cls is tnn.BatchNorm2d else 5
    ours, theirs = ours_cls(channels, **kwargs), torch_cls(channels, **kwargs)
    if ours.affine:  # gamma and beta away from 1 and 0, the same in both
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5)
            ours.bias.normal_()
        theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize(("ours_cls", "torch_cls", "shape"), CASES)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_steps_equal_torch(ours_cls, torch_cls, shape, momentum):
    torch.manual_seed(0)
    ours, theirs = pair(ours_cls, torch_cls, momentum=momentum)
    for _ in range(4):  # several steps: the running averages must follow torch's
        x = (torch.randn(shape) * 3 + 2).requires_grad_()
        a, e = ours(x), theirs(x)
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(e)
        params = [x, ours.weight, ours.bias]
        ref_params = [x, theirs.weight, theirs.bias]
        for da, de in zip(
            torch.autograd.grad(a, params, g), torch.autograd.grad(e, ref_params, g), strict=True
        ):
            torch.testing.assert_close(da, de, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.state_dict(), theirs.state_dict(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("ours_cls", "torch_cls", "shape"), CASES)
def test_eval_uses_the_running_statistics(ours_cls, torch_cls, shape):
    torch.manual_seed(0)
    ours, theirs = pair(ours_cls, torch_cls)
    for _ in range(3):
        x = torch.randn(shape) * 2 - 1
        ours(x), theirs(x)
    ours.eval(), theirs.eval()
    x = torch.randn(shape)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    # One sample alone gives the same answer as within the batch: no batch statistics.
    torch.testing.assert_close(ours(x[:1]), ours(x)[:1])
    before = ours.state_dict()
    ours(x)
    torch.testing.assert_close(ours.state_dict(), before)  # eval leaves the averages alone


def test_without_affine_or_running_statistics_like_torch():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 3, 3)
    for kwargs in ({"affine": False}, {"track_running_stats": False}):
        ours, theirs = tnn.BatchNorm2d(4, **kwargs), torch.nn.BatchNorm2d(4, **kwargs)
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
        ours.eval(), theirs.eval()
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_function_passes_gradcheck_in_float64():
    torch.manual_seed(0)
    for shape in [(6, 3), (4, 3, 5), (3, 3, 4, 2)]:
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        gamma = torch.rand(3, dtype=torch.float64, requires_grad=True) + 0.5
        beta = torch.randn(3, dtype=torch.float64, requires_grad=True)

        def y_of(x, gamma, beta):
            return BatchNormFunction.apply(x, gamma, beta, 1e-5)[0]

        assert torch.autograd.gradcheck(y_of, (x, gamma, beta))


def test_state_dict_moves_between_ours_and_torch():
    torch.manual_seed(0)
    trained = torch.nn.BatchNorm2d(3)
    for _ in range(3):
        trained(torch.randn(4, 3, 2, 2) + 5)
    ours = tnn.BatchNorm2d(3)
    ours.load_state_dict(trained.state_dict())
    assert ours.num_batches_tracked.item() == 3
    back = torch.nn.BatchNorm2d(3)
    back.load_state_dict(ours.state_dict())
    torch.testing.assert_close(back.state_dict(), trained.state_dict())
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(ours.eval()(x), trained.eval()(x))


def test_input_shapes_are_checked_like_torch():
    with pytest.raises(ValueError, match="4D"):
        tnn.BatchNorm2d(3)(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="2D or 3D"):
        tnn.BatchNorm1d(3)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="more than 1 value"):
        tnn.BatchNorm1d(3)(torch.randn(1, 3))


def test_a_second_derivative_is_refused_not_wrong():
    """The hand-written backward is first-order only: differentiating it again (a gradient
    penalty's create_graph=True) raises, as torch's once_differentiable functions do."""
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    bn = tnn.BatchNorm2d(3).double()
    (grad,) = torch.autograd.grad(bn(x).pow(3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad.pow(2).sum().backward()
    # first derivatives are as before: equal to torch's
    twin = torch.nn.BatchNorm2d(3).double()
    (expected,) = torch.autograd.grad(twin(x).pow(3).sum(), x)
    torch.testing.assert_close(grad.detach(), expected)
