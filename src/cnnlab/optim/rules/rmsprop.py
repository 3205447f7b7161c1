"""RMSProp: AdaGrad with a moving average of squared gradients instead of their sum."""

from collections.abc import Iterable

import torch
from torch import Tensor

from cnnlab.optim.rules._base import UpdateRule, decayed, decayed_all, zeros_like


class RMSProp(UpdateRule):
    """r <- rho r + (1 - rho) g*g; theta <- theta - eps g / (delta + sqrt(r)).

    Old gradients fade by ``rho`` per step, so the steps do not shrink forever as AdaGrad's do.
    Matches ``torch.optim.RMSprop(params, lr, alpha=rho, eps=delta)`` (no momentum, not
    centred), which also adds delta outside the square root.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
    ) -> None:
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults, foreach)

    def _init_state(self, param, state):
        state["r"] = zeros_like(param)

    def _loop(self, group, params, grads, states):
        eps, rho, delta, lam = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        for theta, g, state in zip(params, grads, states, strict=True):
            g = decayed(g, theta, lam)  # g <- g + lambda theta
            r = state["r"]
            r.mul_(rho).addcmul_(g, g, value=1 - rho)  # r <- rho r + (1 - rho) g*g
            denominator = r.sqrt().add_(delta)  # delta + sqrt(r)
            theta.addcdiv_(g, denominator, value=-eps)  # theta <- theta - eps g / (delta + sqrt(r))

    def _foreach(self, group, params, grads, states):
        rho = group["rho"]
        grads = decayed_all(grads, params, group["weight_decay"])
        rs = [state["r"] for state in states]
        torch._foreach_mul_(rs, rho)
        torch._foreach_addcmul_(rs, grads, grads, value=1 - rho)
        denominators = torch._foreach_sqrt(rs)
        torch._foreach_add_(denominators, group["eps"])
        torch._foreach_addcdiv_(params, grads, denominators, value=-group["lr"])
