"""Adadelta: RMSProp's scaling with the step's units restored by a moving average of past steps."""

from collections.abc import Iterable

import torch
from torch import Tensor

from cnnlab.optim.rules._base import UpdateRule, decayed, decayed_all, zeros_like


class Adadelta(UpdateRule):
    """dx = -sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) g; theta <- theta + lr dx (Zeiler, 2012).

    E[g^2] <- rho E[g^2] + (1 - rho) g^2 is RMSProp's average of squared gradients; E[dx^2] <-
    rho E[dx^2] + (1 - rho) dx^2, taken after the step, averages the squared steps themselves.
    Their ratio gives the step the units of theta, so the paper has no learning rate (``lr=1``
    here, a plain multiplier). Both averages start at zero: the first step is
    sqrt(eps) / sqrt((1 - rho) g^2 + eps) g, small, and the steps grow as E[dx^2] fills.
    Matches ``torch.optim.Adadelta(params, lr, rho, eps)``, which also puts eps inside both
    square roots. ConvNetJS's demo trains with it.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
    ) -> None:
        if not 0.0 <= rho <= 1.0:  # rho = 1 is allowed, as torch allows it: then dx = -g
            raise ValueError(f"rho must be in [0, 1], got {rho}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults, foreach)

    def _init_state(self, param, state):
        state["g2"] = zeros_like(param)  # E[g^2], the average of squared gradients
        state["dx2"] = zeros_like(param)  # E[dx^2], the average of squared steps

    def _loop(self, group, params, grads, states):
        lr, rho, eps, lam = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        for theta, g, state in zip(params, grads, states, strict=True):
            g = decayed(g, theta, lam)  # g <- g + lambda theta
            g2, dx2 = state["g2"], state["dx2"]
            g2.mul_(rho).addcmul_(g, g, value=1 - rho)  # E[g^2] <- rho E[g^2] + (1 - rho) g^2
            rms_g = g2.add(eps).sqrt_()  # RMS[g] = sqrt(E[g^2] + eps)
            rms_dx = dx2.add(eps).sqrt_()  # RMS[dx] = sqrt(E[dx^2] + eps), up to the last step
            dx = rms_dx.div_(rms_g).mul_(g).neg_()  # dx = -RMS[dx] / RMS[g] g
            dx2.mul_(rho).addcmul_(dx, dx, value=1 - rho)  # E[dx^2] <- rho E[dx^2] + (1 - rho) dx^2
            theta.add_(dx, alpha=lr)  # theta <- theta + lr dx

    def _foreach(self, group, params, grads, states):
        rho, eps = group["rho"], group["eps"]
        grads = decayed_all(grads, params, group["weight_decay"])
        g2s = [state["g2"] for state in states]
        dx2s = [state["dx2"] for state in states]
        torch._foreach_mul_(g2s, rho)
        torch._foreach_addcmul_(g2s, grads, grads, value=1 - rho)
        rms_gs = torch._foreach_add(g2s, eps)
        torch._foreach_sqrt_(rms_gs)
        steps = torch._foreach_add(dx2s, eps)  # becomes -dx: the sign goes into the last line
        torch._foreach_sqrt_(steps)
        torch._foreach_div_(steps, rms_gs)
        torch._foreach_mul_(steps, grads)
        torch._foreach_mul_(dx2s, rho)
        torch._foreach_addcmul_(dx2s, steps, steps, value=1 - rho)
        torch._foreach_add_(params, steps, alpha=-group["lr"])
