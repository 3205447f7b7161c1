"""Fine-tuning strategies as a Lightning callback: which part of the network trains, and when.

The optimizer holds every parameter from the start (the backbone's groups at
``backbone_lr_scale`` times the head's rate, see cnnlab.optim.param_groups); this callback only
switches ``requires_grad`` and the batch-norm mode. A frozen parameter gets no gradient, so the
optimizer leaves it alone, and unfreezing needs no new parameter group: the learning-rate
schedule, checkpoints and resume see one optimizer throughout.
"""

import logging
import math

import lightning.pytorch as pl
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.parts import backbone_modules, split_parameters
from cnnlab.nn import BatchNormBase

log = logging.getLogger("cnnlab")

STRATEGIES = ("feature_extract", "full", "gradual")
_BATCH_NORMS = (nn.modules.batchnorm._BatchNorm, BatchNormBase)


class Finetune(pl.Callback):
    """``feature_extract``: backbone frozen for the whole run, its batch norm in eval mode.
    ``full``: everything trains from the first step.
    ``gradual``: backbone frozen for ``freeze_epochs`` epochs, then it trains too.
    ``train_bn=False`` keeps the backbone's batch norm in eval mode (statistics, scale and
    shift as pretrained) also while the rest of the backbone trains.
    """

    def __init__(self, strategy: str, freeze_epochs: int | None = 0, train_bn: bool = True):
        if strategy not in STRATEGIES:
            raise UserError(
                f"finetune.strategy={strategy!r} is not a fine-tuning strategy; choose one of "
                f"{', '.join(STRATEGIES)} (finetune=feature_extract, finetune=full, ...)."
            )
        if strategy == "gradual" and (freeze_epochs is None or freeze_epochs < 0):
            raise UserError(
                f"finetune=gradual needs finetune.freeze_epochs >= 0, got {freeze_epochs}."
            )
        self.strategy = strategy
        self.frozen_epochs = {
            "feature_extract": math.inf,
            "full": 0,
            "gradual": freeze_epochs,
        }[strategy]
        self.train_bn = train_bn and strategy != "feature_extract"
        self.frozen: bool | None = None
        self._eval_norms: list[nn.Module] = []

    def _apply(self, net: nn.Module, epoch: int) -> None:
        """Freeze or unfreeze the backbone for ``epoch``; pick the norm layers kept in eval."""
        self.frozen = epoch < self.frozen_epochs
        norms = [
            m for b in backbone_modules(net) for m in b.modules() if isinstance(m, _BATCH_NORMS)
        ]
        backbone, _ = split_parameters(net)
        for p in backbone:
            p.requires_grad_(not self.frozen)
        self._eval_norms = norms if (self.frozen or not self.train_bn) else []
        for m in self._eval_norms:
            for p in m.parameters():
                p.requires_grad_(False)
        if not self._eval_norms:  # unfrozen: back to training mode (Lightning keeps the modes)
            for m in norms:
                m.train()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        net = pl_module.net
        self._apply(net, trainer.current_epoch)
        backbone, head = split_parameters(net)
        n_back = sum(p.numel() for p in backbone)
        n_train = sum(p.numel() for p in net.parameters() if p.requires_grad)
        n_frozen = sum(p.numel() for p in net.parameters() if not p.requires_grad)
        when = {
            "feature_extract": "the backbone stays frozen",
            "full": "every layer trains",
            "gradual": f"the backbone unfreezes after {self.frozen_epochs} epoch(s)",
        }[self.strategy]
        log.info(
            "Fine-tuning (%s): %s parameters trainable, %s frozen (backbone %s, head %s); %s.",
            self.strategy,
            f"{n_train:,}",
            f"{n_frozen:,}",
            f"{n_back:,}",
            f"{sum(p.numel() for p in head):,}",
            when,
        )

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        was_frozen = self.frozen
        self._apply(pl_module.net, trainer.current_epoch)
        if was_frozen and not self.frozen:
            n = sum(p.numel() for p in pl_module.net.parameters() if p.requires_grad)
            log.info(
                "Epoch %d: the backbone is unfrozen; %s parameters train now.",
                trainer.current_epoch,
                f"{n:,}",
            )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        # Lightning puts the whole module back in training mode around validation: re-apply.
        for m in self._eval_norms:
            m.eval()
