"""A small registry of model builders: configs name builders, tests iterate over the registry."""

from collections.abc import Callable

from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.textbook import choose_layers

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_TORCHVISION_WEIGHTS: list[str] = []  # names whose state dict is torchvision's model of that name


def register_model(
    name: str, *, torchvision_weights: bool = False
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Record a builder under ``name``; a second builder with the same name is refused.

    ``torchvision_weights``: the family declares that this builder's state dict has the keys and
    shapes of torchvision's model of the same name, so torchvision's published weights load by
    name (``model.weights=IMAGENET1K_V1``); a test holds every such declaration.
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"a model named {name!r} is registered already")
        _BUILDERS[name] = builder
        if torchvision_weights:
            _TORCHVISION_WEIGHTS.append(name)
        return builder

    return decorate


def torchvision_archs() -> tuple[str, ...]:
    """The registered names that take torchvision's published weights, in registration order."""
    return tuple(_TORCHVISION_WEIGHTS)


def list_models(sorted_: bool = True) -> list[str]:
    """The registered names, sorted, or in the order they were registered."""
    return sorted(_BUILDERS) if sorted_ else list(_BUILDERS)


def get_model(name: str, layers: str = "torch", **kwargs) -> nn.Module:
    """Build the registered model ``name`` with the builder's keyword arguments; ``layers=
    "textbook"`` swaps in cnnlab.nn's convolution, pooling and batch norm (``models/textbook``)."""
    if name not in _BUILDERS:
        available = ", ".join(list_models())
        raise UserError(f"There is no model named {name!r}. Available models: {available}.")
    return choose_layers(_BUILDERS[name](**kwargs), layers)


# Images at most this many pixels a side get the small-input (CIFAR-style) layout when a model
# config leaves ``small_input`` null: digits and CIFAR (32), MNIST (28), FER-2013 (48),
# Tiny ImageNet (64). The ImageNet stems shrink such images to a few pixels before the first
# stage; from 65 pixels on, the ImageNet layout is kept.
SMALL_INPUT_MAX = 64


def small_input_for(image_size: int | None) -> bool:
    """Whether an ``image_size`` x ``image_size`` input wants the small-input layout."""
    return image_size is not None and image_size <= SMALL_INPUT_MAX
