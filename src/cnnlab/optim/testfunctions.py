"""Two-dimensional test functions on which the update rules can be watched at work.

Each function comes with the place its paths start, the window they are drawn in and one
learning rate per rule, picked so that the picture shows what the lecture says about the rule:
plain gradient descent zig-zags across a narrow valley or crawls along it, momentum overshoots
and swings back, the adaptive rules scale each coordinate and head for the minimum.
The formulas take ``x`` and ``y`` separately, so they work on torch tensors (for autograd) and
on numpy grids (for contour plots) alike.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Objective:
    """A function of two variables, and how to show descent on it."""

    name: str
    formula: str  # for the picture's title (matplotlib mathtext)
    f: Callable[[Any, Any], Any]
    start: tuple[float, float]
    minimum: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    steps: int  # enough for the slowest rule's story to show, few enough to stay readable
    lrs: dict[str, float] = field(default_factory=dict)  # rule name -> learning rate
    log_levels: bool = False  # contour levels spaced evenly in log f rather than in sqrt f


def _quadratic(x: Any, y: Any) -> Any:
    return 0.5 * (x**2 + 25.0 * y**2)  # curvatures 1 and 25: condition number 25


def _rosenbrock(x: Any, y: Any) -> Any:
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2  # a curved valley; minimum 0 at (1, 1)


QUADRATIC = Objective(
    name="quadratic",
    formula=r"$f(x, y) = \frac{1}{2}(x^2 + 25\,y^2)$",
    f=_quadratic,
    start=(-9.0, 2.0),
    minimum=(0.0, 0.0),
    xlim=(-10.0, 10.0),
    ylim=(-3.0, 3.0),
    steps=80,
    lrs={
        # Stable only below 2/25 = 0.08: at 0.075 each step flips y and shrinks it by 0.875,
        # while x, with curvature 1, moves 0.075 of the way per step.
        "SGD": 0.075,
        "Momentum": 0.01,
        "AdaGrad": 1.5,
        "RMSProp": 0.15,
        "Adam": 0.3,
        # Steps start at lr sqrt(eps / (1 - rho)) = 0.003 lr and grow as the average of past
        # steps fills: at the paper's lr = 1 the path hardly leaves the start in 80 steps.
        "Adadelta": 100.0,
    },
)

ROSENBROCK = Objective(
    name="rosenbrock",
    formula=r"$f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2$",
    f=_rosenbrock,
    start=(-1.5, 2.0),
    minimum=(1.0, 1.0),
    xlim=(-2.0, 2.0),
    ylim=(-1.0, 3.0),
    steps=1000,
    lrs={
        # The valley floor curves by ~1000 across and ~1 along it: plain descent must keep the
        # rate under 2/1000 and then crawls.
        "SGD": 0.001,
        "Momentum": 0.001,  # the same rate as SGD: the velocity carries it along the floor
        "AdaGrad": 0.5,
        "RMSProp": 0.01,
        "Adam": 0.05,
        "Adadelta": 1.0,  # the paper's: the 1000 steps are enough for its steps to grow
    },
    log_levels=True,
)

OBJECTIVES: dict[str, Objective] = {o.name: o for o in (QUADRATIC, ROSENBROCK)}
