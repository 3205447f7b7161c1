"""The textbook update rules: against their torch.optim twins, their own loops, and by hand."""

import copy
import io
import math
from collections.abc import Callable
from functools import partial

import pytest
import torch
from torch import nn

from cnnlab.optim import SGD, Adadelta, AdaGrad, Adam, Momentum, RMSProp

# name -> (our class, its arguments, the torch twin, the same rule in torch's words)
TWINS = {
    "sgd": (SGD, {"lr": 0.01}, torch.optim.SGD, {"lr": 0.01}),
    "momentum": (
        Momentum,
        {"lr": 0.01, "momentum": 0.9},
        torch.optim.SGD,
        {"lr": 0.01, "momentum": 0.9, "dampening": 0.0},
    ),
    "adagrad": (
        AdaGrad,
        {"lr": 0.01, "eps": 1e-7},
        torch.optim.Adagrad,
        {"lr": 0.01, "eps": 1e-7, "initial_accumulator_value": 0.0},
    ),
    "rmsprop": (
        RMSProp,
        {"lr": 0.001, "rho": 0.9, "eps": 1e-6},
        torch.optim.RMSprop,
        {"lr": 0.001, "alpha": 0.9, "eps": 1e-6},
    ),
    "adam": (
        Adam,
        {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8},
        torch.optim.Adam,
        {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8},
    ),
    "adadelta": (
        Adadelta,
        {"lr": 1.0, "rho": 0.9, "eps": 1e-6},
        torch.optim.Adadelta,
        {"lr": 1.0, "rho": 0.9, "eps": 1e-6},
    ),
}
TOLERANCE = {torch.float64: 1e-8, torch.float32: 1e-5}  # relative, after 50 steps


# Problems whose gradients keep their sign for 50 steps, so that rounding differences are not
# blown up by g / sqrt(r) near g = 0.
def least_squares(dtype: torch.dtype) -> tuple[nn.Module, Callable]:
    """A linear fit y = W x + b started far from W* (positive inputs, targets far above)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 8, generator=gen, dtype=dtype)
    y = x @ (3 + torch.rand(8, 3, generator=gen, dtype=dtype))
    model = nn.Linear(8, 3).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.rand(p.shape, generator=gen, dtype=dtype))
    return model, lambda m: ((m(x) - y) ** 2).mean()


def convolution(dtype: torch.dtype) -> tuple[nn.Module, Callable]:
    """A 3x3 convolution on positive images pulled towards a far target (every output 5)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 2, 8, 8, generator=gen, dtype=dtype)
    model = nn.Conv2d(2, 3, 3).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.rand(p.shape, generator=gen, dtype=dtype))
    return model, lambda m: ((m(x) - 5.0) ** 2).mean()


PROBLEMS = {"least_squares": least_squares, "convolution": convolution}


def train(model: nn.Module, loss_fn: Callable, opt: torch.optim.Optimizer, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model).backward()
        opt.step()


def trained(make: Callable, problem: Callable, dtype: torch.dtype, steps: int = 50):
    """The parameters after ``steps`` updates by ``make(params)`` from the problem's start."""
    model, loss_fn = problem(dtype)
    train(model, loss_fn, make(model.parameters()), steps)
    return [p.detach() for p in model.parameters()]


def assert_near(ours: list, theirs: list, rel: float) -> None:
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=rel, atol=rel * b.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("name", TWINS)
def test_matches_the_torch_twin(name, problem, dtype):
    ours, kwargs, twin, twin_kwargs = TWINS[name]
    start = [p.detach() for p in PROBLEMS[problem](dtype)[0].parameters()]
    expected = trained(lambda ps: twin(ps, **twin_kwargs), PROBLEMS[problem], dtype)
    assert not any(torch.allclose(a, b) for a, b in zip(expected, start, strict=True))
    for foreach in (False, True):
        got = trained(partial(ours, **kwargs, foreach=foreach), PROBLEMS[problem], dtype)
        assert_near(got, expected, TOLERANCE[dtype])


@pytest.mark.parametrize("name", TWINS)
def test_weight_decay_matches_the_torch_twin(name):
    # Two groups as the task module builds them: decay on the weights, none on the bias.
    ours, kwargs, twin, twin_kwargs = TWINS[name]

    def groups(model: nn.Module) -> list[dict]:
        return [{"params": [model.weight]}, {"params": [model.bias], "weight_decay": 0.0}]

    results = []
    for make in (
        lambda m: twin(groups(m), **twin_kwargs, weight_decay=0.05),
        lambda m: ours(groups(m), **kwargs, weight_decay=0.05, foreach=False),
        lambda m: ours(groups(m), **kwargs, weight_decay=0.05),
    ):
        model, loss_fn = convolution(torch.float64)
        train(model, loss_fn, make(model), 50)
        results.append([p.detach() for p in model.parameters()])
    expected, *got = results
    without_decay = trained(lambda ps: ours(ps, **kwargs), convolution, torch.float64)
    assert not torch.allclose(expected[0], without_decay[0], rtol=1e-6)  # decay did something
    for params in got:
        assert_near(params, expected, TOLERANCE[torch.float64])


@pytest.mark.parametrize("name", TWINS)
def test_foreach_path_equals_the_loop(name):
    ours, kwargs, _, _ = TWINS[name]
    for problem in PROBLEMS.values():
        for dtype, rel in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
            loop = trained(lambda ps: ours(ps, **kwargs, foreach=False), problem, dtype)
            multi = trained(lambda ps: ours(ps, **kwargs, foreach=True), problem, dtype)
            assert_near(multi, loop, rel)


@pytest.mark.parametrize("name", TWINS)
def test_parameters_without_a_gradient_sit_out(name):
    # The bias gets a gradient only every third step, so per-parameter step counts (Adam's t)
    # differ within one group; both paths and the twin must agree on what that means.
    ours, kwargs, twin, twin_kwargs = TWINS[name]
    results = []
    for make in (
        lambda ps: twin(ps, **twin_kwargs),
        lambda ps: ours(ps, **kwargs, foreach=False),
        lambda ps: ours(ps, **kwargs),
    ):
        model, loss_fn = least_squares(torch.float64)
        opt = make(model.parameters())
        for i in range(30):
            opt.zero_grad(set_to_none=True)
            loss_fn(model).backward()
            if i % 3:
                model.bias.grad = None
            opt.step()
        results.append([p.detach() for p in model.parameters()])
    expected, *got = results
    for params in got:
        assert_near(params, expected, TOLERANCE[torch.float64])


@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
@pytest.mark.parametrize("name", TWINS)
def test_state_dict_round_trip_continues_exactly(name, foreach):
    ours, kwargs, _, _ = TWINS[name]
    model, loss_fn = convolution(torch.float64)
    opt = ours(model.parameters(), **kwargs, foreach=foreach)
    train(model, loss_fn, opt, 5)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)  # as a checkpoint stores it
    resumed_model = copy.deepcopy(model)
    train(model, loss_fn, opt, 5)

    buffer.seek(0)
    resumed = ours(resumed_model.parameters(), **kwargs, foreach=foreach)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    train(resumed_model, loss_fn, resumed, 5)
    for a, b in zip(resumed_model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", TWINS)
def test_sparse_gradients_are_refused_with_a_clear_message(name):
    ours, kwargs, _, _ = TWINS[name]
    embedding = nn.Embedding(10, 3, sparse=True)
    embedding(torch.tensor([1, 2])).sum().backward()
    opt = ours(embedding.parameters(), **kwargs)
    with pytest.raises(RuntimeError, match=f"{ours.__name__} does not support sparse gradients"):
        opt.step()


def test_the_multi_tensor_path_is_the_default(monkeypatch):
    taken = []
    monkeypatch.setattr(Adam, "_foreach", lambda self, *args: taken.append("foreach"))
    monkeypatch.setattr(Adam, "_loop", lambda self, *args: taken.append("loop"))
    p = nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    for foreach in (None, True, False):
        Adam([p], foreach=foreach).step()
    assert taken == ["foreach", "foreach", "loop"]


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=-0.1),
        lambda ps: Momentum(ps, lr=0.1, momentum=1.0),
        lambda ps: AdaGrad(ps, weight_decay=-1.0),
        lambda ps: RMSProp(ps, rho=1.0),
        lambda ps: Adam(ps, betas=(0.9, 1.0)),
        lambda ps: Adadelta(ps, rho=1.5),
        lambda ps: Adadelta(ps, rho=-0.1),
    ],
)
def test_impossible_hyperparameters_are_refused(make):
    with pytest.raises(ValueError):
        make([nn.Parameter(torch.zeros(1))])


# One or two steps worked by hand, on theta = 0 with a fixed gradient g, in float64.
G = [3.0, -0.02]  # a large and a small coordinate: the adaptive rules treat them alike


def steps_from_zero(opt_class: type, n: int, **kwargs) -> list[float]:
    theta = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = opt_class([theta], **kwargs)
    for _ in range(n):
        theta.grad = torch.tensor(G, dtype=torch.float64)
        opt.step()
    return theta.tolist()


@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
def test_worked_steps(foreach):
    approx = pytest.approx
    # SGD: theta = 0 - 0.1 g
    assert steps_from_zero(SGD, 1, lr=0.1, foreach=foreach) == approx([-0.3, 0.002])
    # Momentum: v1 = -0.1 g, theta1 = v1; v2 = 0.9 v1 - 0.1 g = -0.19 g, theta2 = -0.29 g
    theta = steps_from_zero(Momentum, 2, lr=0.1, momentum=0.9, foreach=foreach)
    assert theta == approx([-0.87, 0.0058])
    # AdaGrad: r1 = g*g, so the first step is eps g / (delta + |g|): eps * sign(g) for both
    # coordinates although g differs 150-fold; r2 = 2 g*g adds eps * sign(g) / sqrt(2).
    theta = steps_from_zero(AdaGrad, 1, lr=0.01, eps=1e-7, foreach=foreach)
    assert theta == approx([-0.01, 0.01], rel=1e-5)
    assert theta[0] == -0.01 * 3.0 / (1e-7 + 3.0)
    theta = steps_from_zero(AdaGrad, 2, lr=0.01, eps=1e-7, foreach=foreach)
    assert theta == approx([-0.01 * (1 + 0.5**0.5), 0.01 * (1 + 0.5**0.5)], rel=1e-5)
    # RMSProp: r1 = (1 - 0.9) g*g, so the first step is eps * sign(g) / sqrt(0.1) = 3.16 eps
    theta = steps_from_zero(RMSProp, 1, lr=0.001, rho=0.9, eps=1e-6, foreach=foreach)
    assert theta == approx([-0.0031623, 0.0031623], rel=1e-3)
    assert theta[1] == approx(0.001 * 0.02 / (math.sqrt(0.1) * 0.02 + 1e-6), rel=1e-12)
    # Adam: with a constant g the corrected averages are exactly s^ = g and r^ = g*g, so every
    # step is eps * sign(g): three steps move each coordinate by 3 eps.
    theta = steps_from_zero(Adam, 3, lr=0.001, foreach=foreach)
    assert theta == approx([-0.003, 0.003], rel=1e-6)
    # Adadelta: E[g^2] = E[dx^2] = 0 at first, so E[g^2] <- (1 - rho) g^2 and the first step is
    # -lr sqrt(eps) / sqrt((1 - rho) g^2 + eps) g: tiny, about -lr sqrt(eps / (1 - rho)) sign(g)
    # where (1 - rho) g^2 dwarfs eps (g = 3), 1.2 % less for g = -0.02 ((1 - rho) g^2 = 40 eps).
    theta = steps_from_zero(Adadelta, 1, lr=0.5, rho=0.9, eps=1e-6, foreach=foreach)
    expected = [-0.5 * math.sqrt(1e-6) / math.sqrt(0.1 * g * g + 1e-6) * g for g in G]
    assert theta == approx(expected, rel=1e-12)
    assert theta[0] == approx(-0.5 * math.sqrt(1e-5), rel=1e-6)
    assert theta[1] == approx(0.5 * math.sqrt(1e-5) / math.sqrt(1.025), rel=1e-12)
