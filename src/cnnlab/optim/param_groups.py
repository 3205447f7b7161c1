"""Split parameters into those that take weight decay and those that do not."""

from torch import nn

from cnnlab.nn import BatchNormBase

_NORM_TYPES = (
    nn.modules.batchnorm._NormBase,
    BatchNormBase,  # cnnlab's textbook batch norm
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def weight_decay_groups(model: nn.Module, decay_norm_and_bias: bool = False) -> list[dict]:
    """Two optimizer parameter groups: weights with decay, and norm/bias parameters without.

    Decay pulls a weight toward zero; on a bias or a normalisation layer's scale and shift it
    only fights the layer's job, so by default those get ``weight_decay=0``. The first group
    takes the optimizer's own ``weight_decay``.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias:
        return [{"params": params}]
    no_decay: set[int] = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, _NORM_TYPES) or name == "bias":
                no_decay.add(id(p))
    decay = [p for p in params if id(p) not in no_decay]
    rest = [p for p in params if id(p) in no_decay]
    groups = [{"params": decay}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    return groups
