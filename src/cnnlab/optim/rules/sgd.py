"""Stochastic gradient descent, plain and with (heavy-ball) momentum."""

from collections.abc import Iterable

import torch
from torch import Tensor

from cnnlab.optim.rules._base import UpdateRule, decayed, decayed_all, zeros_like


class SGD(UpdateRule):
    """theta <- theta - eps g: a step against the gradient, the same size everywhere.

    Matches ``torch.optim.SGD(params, lr, weight_decay=...)``.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay}, foreach)

    def _loop(self, group, params, grads, states):
        eps, lam = group["lr"], group["weight_decay"]
        for theta, g in zip(params, grads, strict=True):
            g = decayed(g, theta, lam)  # g <- g + lambda theta
            theta.add_(g, alpha=-eps)  # theta <- theta - eps g

    def _foreach(self, group, params, grads, states):
        grads = decayed_all(grads, params, group["weight_decay"])
        torch._foreach_add_(params, grads, alpha=-group["lr"])


class Momentum(UpdateRule):
    """v <- alpha v - eps g; theta <- theta + v: a velocity that remembers past gradients.

    Consistent gradients add up (up to 1 / (1 - alpha) times the plain step) while the parts
    that flip sign cancel. The velocity ``v`` starts at zero. Matches
    ``torch.optim.SGD(params, lr, momentum=alpha, dampening=0)`` at a constant learning rate:
    torch keeps u <- alpha u + g and steps theta <- theta - eps u, which is v = -eps u as long as
    eps does not change (when it does, torch's form applies the new rate to the old velocity).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(
            params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}, foreach
        )

    def _init_state(self, param, state):
        state["v"] = zeros_like(param)

    def _loop(self, group, params, grads, states):
        eps, alpha, lam = group["lr"], group["momentum"], group["weight_decay"]
        for theta, g, state in zip(params, grads, states, strict=True):
            g = decayed(g, theta, lam)  # g <- g + lambda theta
            v = state["v"]
            v.mul_(alpha).add_(g, alpha=-eps)  # v <- alpha v - eps g
            theta.add_(v)  # theta <- theta + v

    def _foreach(self, group, params, grads, states):
        grads = decayed_all(grads, params, group["weight_decay"])
        vs = [state["v"] for state in states]
        torch._foreach_mul_(vs, group["momentum"])
        torch._foreach_add_(vs, grads, alpha=-group["lr"])
        torch._foreach_add_(params, vs)
