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


def finetune_groups(
    model: nn.Module,
    decay_norm_and_bias: bool = False,
    backbone_lr_scale: float = 1.0,
    head: list[nn.Parameter] | None = None,
) -> list[dict]:
    """``weight_decay_groups`` split into the ``head`` parameters (the classifier a fine-tuned
    network replaces; the model family knows which they are) and the rest, the backbone, each
    group with an ``lr_scale``.

    The head's groups come first (so ``param_groups[0]`` carries the optimizer's own rate); the
    backbone's take ``backbone_lr_scale`` times it. The training module multiplies each group's
    ``lr`` by its ``lr_scale`` once, before the schedule is built on top.
    """
    groups = weight_decay_groups(model, decay_norm_and_bias)
    if backbone_lr_scale == 1.0:
        return groups
    if head is None:
        raise ValueError("backbone_lr_scale needs the head's parameters to tell them apart")
    head_ids = {id(p) for p in head}
    split: list[dict] = []
    for in_head, scale in ((True, 1.0), (False, backbone_lr_scale)):
        for group in groups:
            params = [p for p in group["params"] if (id(p) in head_ids) == in_head]
            if params:
                split.append({**group, "params": params, "lr_scale": scale})
    return split
