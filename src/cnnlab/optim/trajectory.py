"""Run an update rule on a two-variable function and record where its parameter goes."""

import math

import torch

from cnnlab.optim import SGD, Adadelta, AdaGrad, Adam, Momentum, RMSProp
from cnnlab.optim.testfunctions import Objective


def textbook_rules() -> dict[str, type[torch.optim.Optimizer]]:
    """The six update rules of the lecture, by name: the five in the order they are taught, then
    Adadelta, ConvNetJS's demo optimizer."""
    return {
        "SGD": SGD,
        "Momentum": Momentum,
        "AdaGrad": AdaGrad,
        "RMSProp": RMSProp,
        "Adam": Adam,
        "Adadelta": Adadelta,
    }


def descend(
    objective: Objective, rule: type[torch.optim.Optimizer], lr: float, steps: int
) -> torch.Tensor:
    """The points visited, shape (steps + 1, 2), starting with ``objective.start``.

    The parameter is one 2-element tensor and autograd gives the gradient, exactly as a network's
    weights are updated. A path that leaves the finite numbers stops at its last finite point.
    """
    point = torch.tensor(objective.start, dtype=torch.float64, requires_grad=True)
    optimizer = rule([point], lr=lr)
    path = [point.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        objective.f(point[0], point[1]).backward()
        optimizer.step()
        now = point.detach().clone()
        if not all(math.isfinite(v) for v in now.tolist()):
            break
        path.append(now)
    return torch.stack(path)
