"""The backbone / head split that every family declares once (``head_names`` on its class).

The head is the part that maps features to class scores: for LeNet, AlexNet and VGG the whole
fully connected classifier, for ResNet and GoogLeNet the last linear layer (and GoogLeNet's
auxiliary classifiers). Everything else is the backbone. Fine-tuning freezes, re-initialises
or slows down the two parts by these names.
"""

from torch import nn

from cnnlab.errors import UserError


def head_names(net: nn.Module) -> tuple[str, ...]:
    """Names of the head's child modules that ``net`` has (optional ones may be absent)."""
    names = getattr(type(net), "head_names", None)
    if names is None:
        raise UserError(
            f"{type(net).__name__} does not declare which of its layers form the classifier head "
            f"(a class attribute head_names = ('fc',) or similar), so it cannot be fine-tuned."
        )
    return tuple(n for n in names if getattr(net, n, None) is not None)


def is_head_key(net: nn.Module, key: str) -> bool:
    """Whether the parameter or buffer name ``key`` (as in a state dict) belongs to the head."""
    return any(key == n or key.startswith(n + ".") for n in head_names(net))


def split_parameters(net: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone parameters, head parameters), in the network's own order."""
    backbone, head = [], []
    for name, p in net.named_parameters():
        (head if is_head_key(net, name) else backbone).append(p)
    return backbone, head


def backbone_modules(net: nn.Module) -> list[nn.Module]:
    """The backbone's child modules (what a frozen feature extractor keeps in eval mode)."""
    heads = set(head_names(net))
    return [m for name, m in net.named_children() if name not in heads]


def first_conv(net: nn.Module) -> tuple[str, nn.Conv2d]:
    """The name and layer of the first convolution (the one that sees the image's channels)."""
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise UserError(f"{type(net).__name__} has no convolution layer.")
