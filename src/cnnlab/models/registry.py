"""A small registry of model builders: configs name builders, tests iterate over the registry."""

from collections.abc import Callable

from torch import nn

from cnnlab.errors import UserError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Record a builder under ``name``; a second builder with the same name is refused."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"a model named {name!r} is registered already")
        _BUILDERS[name] = builder
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with the builder's keyword arguments."""
    if name not in _BUILDERS:
        available = ", ".join(list_models())
        raise UserError(f"There is no model named {name!r}. Available models: {available}.")
    return _BUILDERS[name](**kwargs)
