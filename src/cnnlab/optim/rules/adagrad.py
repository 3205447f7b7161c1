"""AdaGrad: per-coordinate steps shrunk by the whole history of squared gradients."""

from collections.abc import Iterable

import torch
from torch import Tensor

from cnnlab.optim.rules._base import UpdateRule, decayed, decayed_all, zeros_like


class AdaGrad(UpdateRule):
    """r <- r + g*g; theta <- theta - eps g / (delta + sqrt(r)).

    Coordinates with large past gradients get small steps and rare ones large steps; since
    ``r`` only grows, every step shrinks over time. The first step moves each coordinate by
    about eps * sign(g). ``delta`` (``eps`` here, as torch names it) keeps the division finite.
    Matches ``torch.optim.Adagrad(params, lr, eps=delta, initial_accumulator_value=0)``, which
    also adds delta outside the square root.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 0.01,
        eps: float = 1e-7,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(params, {"lr": lr, "eps": eps, "weight_decay": weight_decay}, foreach)

    def _init_state(self, param, state):
        state["r"] = zeros_like(param)

    def _loop(self, group, params, grads, states):
        eps, delta, lam = group["lr"], group["eps"], group["weight_decay"]
        for theta, g, state in zip(params, grads, states, strict=True):
            g = decayed(g, theta, lam)  # g <- g + lambda theta
            r = state["r"]
            r.addcmul_(g, g)  # r <- r + g*g
            denominator = r.sqrt().add_(delta)  # delta + sqrt(r)
            theta.addcdiv_(g, denominator, value=-eps)  # theta <- theta - eps g / (delta + sqrt(r))

    def _foreach(self, group, params, grads, states):
        grads = decayed_all(grads, params, group["weight_decay"])
        rs = [state["r"] for state in states]
        torch._foreach_addcmul_(rs, grads, grads)
        denominators = torch._foreach_sqrt(rs)
        torch._foreach_add_(denominators, group["eps"])
        torch._foreach_addcdiv_(params, grads, denominators, value=-group["lr"])
