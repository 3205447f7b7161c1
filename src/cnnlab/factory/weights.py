"""Pretrained weights for a freshly built network, as the config asks for them: ``model.weights``
(torchvision's, by name) or ``finetune.weights`` (a file). Loading itself is
``cnnlab.models.weights.load_pretrained``, the one way into a network."""

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
    from cnnlab.models.weights import load_pretrained

    new_head = bool(finetune and finetune.get("new_head", True))
    if weights:
        load_pretrained(net, arch=arch, weights=weights, new_head=new_head)
    else:
        load_pretrained(net, path=path, new_head=new_head)
