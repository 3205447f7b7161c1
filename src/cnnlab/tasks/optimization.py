"""Optimizer, per-step schedule and resume handling shared by every task's LightningModule."""

import logging
from collections.abc import Callable

from cnnlab.models.parts import split_parameters
from cnnlab.optim.param_groups import finetune_groups

log = logging.getLogger(__name__)


class OptimizationMixin:
    """``configure_optimizers`` and the resume hooks, for a LightningModule with ``self.net``.

    ``optimizer`` is a factory ``params -> torch.optim.Optimizer`` (a Hydra ``_partial_``);
    ``scheduler`` a factory ``(optimizer, total_steps=, steps_per_epoch=) -> LRScheduler``
    stepped after every optimizer step, or None for a constant rate. ``backbone_lr_scale``
    (fine-tuning) gives the backbone's parameters that multiple of the optimizer's rate.
    A resumed run rebuilds the schedule for its own length and continues at the restored step.
    """

    def init_optimization(
        self,
        optimizer: Callable,
        scheduler: Callable | None,
        decay_norm_and_bias: bool = False,
        backbone_lr_scale: float = 1.0,
    ) -> None:
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.decay_norm_and_bias = decay_norm_and_bias
        self.backbone_lr_scale = backbone_lr_scale
        self._planned_steps: int | None = None  # total steps of the schedule being followed
        self._restored_plan: int | None = None  # the checkpoint's total, when resuming
        # None: the optimizer factory's own rate; a number (set by the learning-rate finder,
        # tune.lr_find) replaces it
        self.lr: float | None = None

    def configure_optimizers(self):
        rate = {} if self.lr is None else {"lr": self.lr}
        head = None
        if self.backbone_lr_scale != 1.0:  # the family says which layers are the head
            head = split_parameters(self.net)[1]
        groups = finetune_groups(self.net, self.decay_norm_and_bias, self.backbone_lr_scale, head)
        optimizer = self.optimizer_factory(params=groups, **rate)
        for group in optimizer.param_groups:
            group["lr"] *= group.get("lr_scale", 1.0)
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        self._planned_steps = total
        scheduler = self.scheduler_factory(optimizer, total_steps=total, steps_per_epoch=per_epoch)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["cnnlab_schedule"] = {"total_steps": self._planned_steps}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._restored_plan = checkpoint.get("cnnlab_schedule", {}).get("total_steps")

    def on_train_start(self) -> None:
        """After a resume: put the rebuilt schedule's rate for the restored step in place."""
        configs = self.trainer.lr_scheduler_configs
        if not configs:
            return
        sched = configs[0].scheduler
        if not hasattr(sched, "lr_lambdas"):  # not ours: the learning-rate finder's own schedule
            return
        for group, base, fn in zip(
            sched.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True
        ):
            group["lr"] = base * fn(sched.last_epoch)
        if self._restored_plan is not None and self._restored_plan != self._planned_steps:
            log.info(
                "Resumed at step %d: the learning-rate schedule was rebuilt for %d total steps "
                "(the checkpoint's run planned %d) and continues from the restored step.",
                self.global_step,
                self._planned_steps,
                self._restored_plan,
            )
