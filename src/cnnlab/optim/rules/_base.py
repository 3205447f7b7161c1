"""What every textbook update rule shares: gathering gradients and state, and picking a path."""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer


class UpdateRule(Optimizer):
    """A ``torch.optim.Optimizer`` whose subclasses write only the update itself, twice.

    A subclass gives ``_init_state`` (its buffers before the first step), ``_loop`` (the
    reference: one tensor at a time, the lecture's formulas line by line) and ``_foreach`` (the
    same arithmetic on whole lists of tensors with ``torch._foreach_*`` kernels). ``step`` picks
    one of the two per parameter group in this one place: ``foreach=False`` takes the loop,
    ``None`` (the default) or ``True`` the multi-tensor path, so tests can hold them together.
    Sparse gradients are refused rather than densified behind the user's back.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        defaults: dict[str, Any],
        foreach: bool | None,
    ) -> None:
        if defaults["lr"] < 0.0:
            raise ValueError(f"learning rate must be >= 0, got lr={defaults['lr']}")
        if defaults["weight_decay"] < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {defaults['weight_decay']}")
        super().__init__(params, {**defaults, "foreach": foreach})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, states = self._gather(group)
            if params:
                update = self._loop if group["foreach"] is False else self._foreach
                update(group, params, grads, states)
        return loss

    def _gather(self, group: dict) -> tuple[list[Tensor], list[Tensor], list[dict]]:
        """The group's parameters that have a gradient, their gradients and their state."""
        params, grads, states = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.layout != torch.strided:
                raise RuntimeError(
                    f"{type(self).__name__} does not support sparse gradients (a parameter of "
                    f"shape {tuple(p.shape)} has a {p.grad.layout} gradient). Build the layer "
                    "with dense gradients, e.g. nn.Embedding(..., sparse=False), or use "
                    "torch.optim.SparseAdam for it."
                )
            state = self.state[p]
            if not state:
                self._init_state(p, state)
            params.append(p)
            grads.append(p.grad)
            states.append(state)
        return params, grads, states

    def _init_state(self, param: Tensor, state: dict) -> None:
        """Fill a parameter's empty state before its first update (nothing by default)."""

    def _loop(self, group: dict, params: list[Tensor], grads: list[Tensor], states: list[dict]):
        raise NotImplementedError

    def _foreach(self, group: dict, params: list[Tensor], grads: list[Tensor], states: list[dict]):
        raise NotImplementedError


def zeros_like(param: Tensor) -> Tensor:
    """A zero buffer shaped, typed and laid out like ``param`` (the rules' state starts at 0)."""
    return torch.zeros_like(param, memory_format=torch.preserve_format)


def decayed(grad: Tensor, param: Tensor, weight_decay: float) -> Tensor:
    """L2 weight decay folded into the gradient, g <- g + lambda theta, as torch.optim does.

    A new tensor, so ``param.grad`` itself is left as backward wrote it."""
    return grad.add(param, alpha=weight_decay) if weight_decay else grad


def decayed_all(grads: list[Tensor], params: list[Tensor], weight_decay: float) -> list[Tensor]:
    """``decayed`` for whole lists in one multi-tensor call."""
    return torch._foreach_add(grads, params, alpha=weight_decay) if weight_decay else grads
