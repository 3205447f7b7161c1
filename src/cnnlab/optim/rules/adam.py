"""Adam: momentum on the gradient and RMSProp's scaling, both corrected for starting at zero."""

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from cnnlab.optim.rules._base import UpdateRule, decayed, decayed_all, zeros_like


class Adam(UpdateRule):
    """theta <- theta - eps s^ / (sqrt(r^) + delta), s and r moving averages of g and g*g.

    s <- rho1 s + (1 - rho1) g and r <- rho2 r + (1 - rho2) g*g. Both start at zero,
    so early on they are too small by the factor 1 - rho^t; s^ = s / (1 - rho1^t) and
    r^ = r / (1 - rho2^t) undo that, and the first step moves each coordinate by about
    eps * sign(g). ``betas`` are (rho1, rho2) and ``eps`` is delta, as torch names them.
    Matches ``torch.optim.Adam(params, lr, betas, eps)`` (L2 weight decay, not AdamW's).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
    ) -> None:
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults, foreach)

    def _init_state(self, param, state):
        state["step"] = 0  # t, this parameter's own count of updates
        state["s"] = zeros_like(param)
        state["r"] = zeros_like(param)

    def _loop(self, group, params, grads, states):
        eps, (rho1, rho2), delta = group["lr"], group["betas"], group["eps"]
        for theta, g, state in zip(params, grads, states, strict=True):
            g = decayed(g, theta, group["weight_decay"])  # g <- g + lambda theta
            state["step"] += 1
            t, s, r = state["step"], state["s"], state["r"]
            s.mul_(rho1).add_(g, alpha=1 - rho1)  # s <- rho1 s + (1 - rho1) g
            r.mul_(rho2).addcmul_(g, g, value=1 - rho2)  # r <- rho2 r + (1 - rho2) g*g
            s_hat = s / (1 - rho1**t)  # s^ = s / (1 - rho1^t)
            r_hat = r / (1 - rho2**t)  # r^ = r / (1 - rho2^t)
            denominator = r_hat.sqrt().add_(delta)  # sqrt(r^) + delta
            theta.addcdiv_(s_hat, denominator, value=-eps)  # theta <- theta - eps s^ / denominator

    def _foreach(self, group, params, grads, states):
        # With c1 = 1 - rho1^t and c2 = 1 - rho2^t the step eps s^ / (sqrt(r^) + delta) equals
        # (eps sqrt(c2) / c1) s / (sqrt(r) + delta sqrt(c2)): the bias corrections become
        # scalars and the denominator takes one pass over the numbers less.
        eps, (rho1, rho2), delta = group["lr"], group["betas"], group["eps"]
        grads = decayed_all(grads, params, group["weight_decay"])
        ss = [state["s"] for state in states]
        rs = [state["r"] for state in states]
        steps = []
        for state in states:
            state["step"] += 1
            steps.append(state["step"])
        torch._foreach_lerp_(ss, grads, 1 - rho1)  # s <- s + (1 - rho1) (g - s)
        torch._foreach_mul_(rs, rho2)
        torch._foreach_addcmul_(rs, grads, grads, value=1 - rho2)
        denominators = torch._foreach_sqrt(rs)
        if len(set(steps)) == 1:  # the usual case: one t, so scalars for the whole list
            sqrt_c2, c1 = math.sqrt(1 - rho2 ** steps[0]), 1 - rho1 ** steps[0]
            torch._foreach_add_(denominators, delta * sqrt_c2)
            torch._foreach_addcdiv_(params, ss, denominators, value=-eps * sqrt_c2 / c1)
        else:  # some parameters sat out steps without a gradient: one t per tensor
            sqrt_c2s = [math.sqrt(1 - rho2**t) for t in steps]
            torch._foreach_add_(denominators, [delta * c for c in sqrt_c2s])
            sizes = [-eps * c / (1 - rho1**t) for c, t in zip(sqrt_c2s, steps, strict=True)]
            torch._foreach_addcdiv_(params, ss, denominators, sizes)
