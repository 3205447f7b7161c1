"""Pretrained weights for a freshly built network: ``model.weights`` or ``finetune.weights``."""

import logging

from omegaconf import DictConfig
from torch import nn

from cnnlab.errors import UserError

log = logging.getLogger("cnnlab")


def active_finetune(finetune: DictConfig | None) -> DictConfig | None:
    """The ``finetune`` settings, or None when there are none or the strategy is ``scratch``."""
    if finetune and finetune.strategy == "scratch":
        if finetune.get("weights"):
            log.info("finetune=scratch: random initialisation; %s is not loaded.", finetune.weights)
        return None
    return finetune or None


def load_configured_weights(
    net: nn.Module, arch: str, weights: str | None, finetune: DictConfig | None
) -> None:
    """Load torchvision's ``weights`` for ``arch`` or the file ``finetune.weights`` into ``net``.

    With a fine-tuning strategy the head is left out of the loaded weights (``finetune.new_head``,
    on by default: a new task gets a new classifier), and weights are required.
    """
    path = finetune.get("weights") if finetune else None
    if weights and path:
        raise UserError(
            f"Two sources of pretrained weights: model.weights={weights} and "
            f"finetune.weights={path}. Keep one (model.weights=null or finetune.weights=null)."
        )
    if not (weights or path):
        if finetune:
            raise UserError(
                f"finetune={finetune.strategy} starts from pretrained weights, and none were "
                "given: set model.weights=IMAGENET1K_V1 (torchvision's, for the models that have "
                "them) or finetune.weights=PATH (a cnnlab checkpoint .ckpt or a state dict .pt, "
                ".pth, .safetensors)."
            )
        return
    from cnnlab.models.parts import is_head_key
    from cnnlab.models.weights import apply_state_dict, file_state_dict, torchvision_state_dict

    if weights:
        state, source = torchvision_state_dict(arch, weights), f"torchvision's {arch} {weights}"
    else:
        state, source = file_state_dict(path), str(path)
    if finetune and finetune.get("new_head", True):
        head = sorted(k for k in state if is_head_key(net, k))
        state = {k: v for k, v in state.items() if k not in head}
        if head:
            log.info(
                "A new classifier head (finetune.new_head=true): not loaded from %s: %s",
                source,
                ", ".join(head),
            )
    apply_state_dict(net, state, source)
