"""The backbone / head split that every family declares once (``head_names`` on its class).

The head is the part that maps features to class scores: for LeNet, AlexNet and VGG the whole
fully connected classifier, for ResNet and GoogLeNet the last linear layer (and GoogLeNet's
auxiliary classifiers). Everything else is the backbone. Fine-tuning freezes, re-initialises
or slows down the two parts by these names.

``choose_head(net, "linear")`` narrows a fully connected classifier to its output layer, as the
lecture's feature extraction does: the pretrained hidden layers (VGG's fc6 and fc7) join the
backbone and only a new linear layer is put on top. ``backbone_stages`` cuts the backbone into
the stages that ``finetune.trainable_layers`` counts from the deepest.
"""

from dataclasses import dataclass

from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.trunk import trunk_of
from cnnlab.nn.layers import CONV2D

HEADS = ("linear", "classifier")


def head_names(net: nn.Module) -> tuple[str, ...]:
    """Names of the head's modules that ``net`` has (optional ones may be absent); a name may be
    dotted (``classifier.6``) once ``choose_head`` has narrowed the head to one layer."""
    names = getattr(net, "head_names", None)  # the instance's choice, else the family's
    if names is None:
        raise UserError(
            f"{type(net).__name__} does not declare which of its layers form the classifier head "
            f"(a class attribute head_names = ('fc',) or similar), so it cannot be fine-tuned."
        )
    return tuple(n for n in names if _submodule(net, n) is not None)


def choose_head(net: nn.Module, head: str) -> None:
    """Which layers a fine-tuned ``net`` replaces (``finetune.head``).

    ``classifier``: the family's whole head (LeNet's C5, F6 and output layer; AlexNet's and
    VGG's three fully connected layers). ``linear``: only its last linear layer; the hidden
    fully connected layers keep their pretrained weights and count as backbone, features for
    the new linear classifier on top. A head that is one linear layer already (ResNet's
    ``fc``) is the same either way.
    """
    if head not in HEADS:
        raise UserError(
            f"finetune.head={head!r} is not a head cnnlab knows; choose linear (a new output "
            f"layer on the pretrained fully connected features) or classifier (the whole "
            f"fully connected classifier new)."
        )
    head_names(net)  # a family that declares no head is refused here
    declared = type(net).head_names
    first = _submodule(net, declared[0])
    if head == "classifier" or not isinstance(first, nn.Sequential):
        net.head_names = declared
        return
    last = [name for name, m in first.named_children() if isinstance(m, nn.Linear)][-1]
    net.head_names = (f"{declared[0]}.{last}", *declared[1:])


def _submodule(net: nn.Module, name: str) -> nn.Module | None:
    try:
        return net.get_submodule(name)
    except AttributeError:  # an optional layer the network was built without
        return None


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


@dataclass
class Stage:
    """A run of backbone layers that fine-tuning freezes or trains together."""

    name: str  # the first and last module names, "layer4" or "features.0-features.2"
    modules: list[nn.Module]


def backbone_stages(net: nn.Module) -> list[Stage]:
    """The backbone's stages, first to last: the family's ``finetune_stages()`` (AlexNet and
    LeNet: one per convolution) or its trunk's (ResNet's stem and layer1-4, VGG's five blocks,
    GoogLeNet's four). Backbone layers outside them, the pretrained fully connected layers
    that ``finetune.head=linear`` keeps, are one more stage, the deepest."""
    own = getattr(net, "finetune_stages", None)
    if callable(own):
        groups = own()
    else:
        trunk = trunk_of(net)
        groups = [[trunk.body.get_submodule(n) for n in stage] for stage in trunk.stages]
    names = {id(m): n for n, m in net.named_modules()}
    stages = [Stage(_span(names, g), g) for g in groups]
    covered = {id(p) for g in groups for m in g for p in m.parameters()}
    rest = [
        m
        for n, m in net.named_modules()
        if next(m.children(), None) is None  # leaf layers with weights of their own
        and any(id(p) not in covered for p in m.parameters(recurse=False))
        and not is_head_key(net, n)
    ]
    if rest:
        stages.append(Stage(_span(names, rest), rest))
    return stages


def _span(names: dict[int, str], modules: list[nn.Module]) -> str:
    """``first-last`` of the modules' names in the network (a trunk may add a parameter-free
    layer of its own, such as the CIFAR ResNets' ReLU, which has none)."""
    known = [names[id(m)] for m in modules if id(m) in names]
    return known[0] if len(known) == 1 else f"{known[0]}-{known[-1]}"


def conv_stages(features: nn.Sequential) -> list[list[nn.Module]]:
    """``features`` cut before each convolution: a stage is one convolution and the activation,
    normalisation and pooling after it (AlexNet's five, LeNet's two)."""
    stages: list[list[nn.Module]] = []
    for layer in features:
        if isinstance(layer, CONV2D) or not stages:
            stages.append([])
        stages[-1].append(layer)
    return stages


def first_conv(net: nn.Module) -> tuple[str, nn.Conv2d]:
    """The name and layer of the first convolution (the one that sees the image's channels)."""
    for name, m in net.named_modules():
        if isinstance(m, CONV2D):
            return name, m
    raise UserError(f"{type(net).__name__} has no convolution layer.")


def last_conv_name(features: nn.Sequential, prefix: str = "features") -> str:
    """``features.<i>`` of the last convolution in ``features``: the layer whose maps Grad-CAM
    weighs in the families built as one Sequential (LeNet, AlexNet, VGG)."""
    last = [i for i, layer in enumerate(features) if isinstance(layer, CONV2D)][-1]
    return f"{prefix}.{last}"


def cam_layer_of(net: nn.Module) -> str:
    """The name of the layer Grad-CAM explains by default: the family's ``cam_layer``, its
    last convolutional stage."""
    name = getattr(net, "cam_layer", None)
    if name is None:
        raise UserError(
            f"{type(net).__name__} declares no Grad-CAM layer (cam_layer): give one with "
            "predict.cam_layer=NAME (a module name, as in cnnlab-summary's Layer column)."
        )
    return name
