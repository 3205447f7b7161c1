"""Fine-tuning strategies as a Lightning callback: which part of the network trains, and when.

The optimizer holds every parameter from the start (the backbone's groups at
``backbone_lr_scale`` times the head's rate, see cnnlab.optim.param_groups); this callback only
switches ``requires_grad`` and the batch-norm mode. A frozen parameter gets no gradient, so the
optimizer leaves it alone, and unfreezing needs no new parameter group: the learning-rate
schedule, checkpoints and resume see one optimizer throughout.

``trainable_layers=N`` keeps all but the backbone's last N stages frozen whenever the backbone
trains (``full`` from the start, ``gradual`` after its frozen epochs): the lecture's "fine-tune
the few deepest layers" (``cnnlab.models.parts.backbone_stages`` says what a stage is).
"""

import logging
import math

import lightning.pytorch as pl
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.parts import (
    backbone_modules,
    backbone_stages,
    head_names,
    split_parameters,
)
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

    def __init__(
        self,
        strategy: str,
        freeze_epochs: int | None = 0,
        train_bn: bool = True,
        trainable_layers: int | None = None,
    ):
        if strategy not in STRATEGIES:
            raise UserError(
                f"finetune.strategy={strategy!r} is not a fine-tuning strategy; choose one of "
                f"{', '.join(STRATEGIES)} (finetune=feature_extract, finetune=full, ...)."
            )
        if strategy == "gradual" and (freeze_epochs is None or freeze_epochs < 0):
            raise UserError(
                f"finetune=gradual needs finetune.freeze_epochs >= 0, got {freeze_epochs}."
            )
        if trainable_layers is not None and (
            trainable_layers < 0 or (strategy == "feature_extract" and trainable_layers > 0)
        ):
            raise UserError(
                f"finetune.trainable_layers={trainable_layers} with finetune={strategy}: the "
                "number of the backbone's deepest stages that train is 0 or more, and "
                "feature_extract trains none. To fine-tune the last N stages, use finetune=full "
                "(or gradual) finetune.trainable_layers=N."
            )
        self.strategy = strategy
        self.trainable_layers = trainable_layers
        self.frozen_epochs = {
            "feature_extract": math.inf,
            "full": 0,
            "gradual": freeze_epochs,
        }[strategy]
        self.train_bn = train_bn and strategy != "feature_extract"
        self.frozen: bool | None = None
        self._eval_norms: list[nn.Module] = []

    def kept_frozen(self, net: nn.Module) -> list[nn.Module]:
        """The backbone layers that stay frozen even when the backbone trains: those before its
        last ``trainable_layers`` stages (none when that is None)."""
        if self.trainable_layers is None:
            return []
        stages = backbone_stages(net)
        n = len(stages)
        if self.trainable_layers > n:
            raise UserError(
                f"finetune.trainable_layers={self.trainable_layers}, but this "
                f"{type(net).__name__}'s backbone has {n} stages ("
                f"{', '.join(s.name for s in stages)}): choose 0 (all frozen) to {n} (all "
                "train), or null (all train)."
            )
        return [m for stage in stages[: n - self.trainable_layers] for m in stage.modules]

    def _apply(self, net: nn.Module, epoch: int) -> None:
        """Freeze or unfreeze the backbone for ``epoch``; pick the norm layers kept in eval."""
        self.frozen = epoch < self.frozen_epochs
        norms = [
            m for b in backbone_modules(net) for m in b.modules() if isinstance(m, _BATCH_NORMS)
        ]
        kept = self.kept_frozen(net)
        kept_ids = {id(p) for m in kept for p in m.parameters()}
        backbone, _ = split_parameters(net)
        for p in backbone:
            p.requires_grad_(not self.frozen and id(p) not in kept_ids)
        if self.frozen or not self.train_bn:
            self._eval_norms = norms
        else:  # the norms of the stages that stay frozen keep their statistics too
            self._eval_norms = [m for k in kept for m in k.modules() if isinstance(m, _BATCH_NORMS)]
        for m in self._eval_norms:
            for p in m.parameters():
                p.requires_grad_(False)
        for m in norms:  # the others back in training mode (Lightning keeps the modes)
            if not any(m is e for e in self._eval_norms):
                m.train()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        net = pl_module.net
        self._apply(net, trainer.current_epoch)
        backbone, head = split_parameters(net)
        n_back = sum(p.numel() for p in backbone)
        n_train = sum(p.numel() for p in net.parameters() if p.requires_grad)
        n_frozen = sum(p.numel() for p in net.parameters() if not p.requires_grad)
        when = self._plan(net)
        log.info(
            "Fine-tuning (%s): %s parameters trainable, %s frozen (backbone %s, head %s %s); %s.",
            self.strategy,
            f"{n_train:,}",
            f"{n_frozen:,}",
            f"{n_back:,}",
            "+".join(head_names(net)),
            f"{sum(p.numel() for p in head):,}",
            when,
        )

    def _plan(self, net: nn.Module) -> str:
        """What trains when, in words, for the log line."""
        if self.strategy == "feature_extract":
            return "the backbone stays frozen"
        part = "every layer"
        if self.trainable_layers is not None:
            stages = backbone_stages(net)
            n, k = len(stages), self.trainable_layers
            names = ", ".join(s.name for s in stages[n - k :]) or "none"
            part = f"the head and the backbone's last {k} of {n} stages ({names})"
        verb = "trains" if self.trainable_layers is None else "train"
        if self.strategy == "full":
            return f"{part} {verb} from the first step"
        return f"{part} {verb} after {self.frozen_epochs} epoch(s) of the head alone"

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
