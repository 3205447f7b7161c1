"""Learning-rate schedules: their shapes, and rebuilding for a longer run."""

import math

import pytest
import torch

from cnnlab.errors import UserError
from cnnlab.optim.schedules import build_scheduler, multiplier


def lrs(name: str, total: int, steps: int | None = None, **kw) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, name=name, total_steps=total, steps_per_epoch=10, **kw)
    out = []
    for _ in range(steps or total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_goes_from_base_to_min():
    values = lrs("cosine", 100, min_lr_ratio=0.1)
    assert values[0] == pytest.approx(1.0)
    assert values[50] == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-9)
    assert values[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_warmup_is_linear_then_schedule():
    values = lrs("cosine", 100, warmup_epochs=1)  # 10 steps of warm-up
    assert values[:10] == pytest.approx([(i + 1) / 11 for i in range(10)])
    assert values[10] == pytest.approx(1.0)


def test_step_decays_every_step_size_epochs():
    values = lrs("step", 100, step_size=3, gamma=0.5)
    assert values[29] == 1.0 and values[30] == 0.5 and values[60] == 0.25


def test_onecycle_rises_to_peak_then_falls():
    values = lrs("onecycle", 100, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    assert values[0] == pytest.approx(1 / 25)
    assert max(values) == pytest.approx(1.0, abs=1e-3) and values.index(max(values)) == 30
    assert values[-1] < 1e-3


@pytest.mark.parametrize("name", ["none", "step", "cosine", "onecycle"])
def test_stepping_past_the_end_is_safe(name):
    values = lrs(name, 20, steps=40)
    assert all(math.isfinite(v) and v >= 0 for v in values)


def test_resumed_scheduler_follows_the_rebuilt_length():
    """A checkpoint keeps the step, not the length: loading into a longer schedule continues it."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    short = build_scheduler(opt, name="cosine", total_steps=50, steps_per_epoch=10)
    for _ in range(30):
        opt.step()
        short.step()
    state = short.state_dict()
    opt2 = torch.optim.SGD([param], lr=1.0)
    longer = build_scheduler(opt2, name="cosine", total_steps=100, steps_per_epoch=10)
    longer.load_state_dict(state)
    assert longer.last_epoch == 30
    assert longer.lr_lambdas[0](30) == pytest.approx(
        multiplier(30, name="cosine", total_steps=100, steps_per_epoch=10)
    )


def test_unknown_name_is_a_user_error():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(UserError, match="cosine"):
        build_scheduler(opt, name="cosin", total_steps=10, steps_per_epoch=1)
