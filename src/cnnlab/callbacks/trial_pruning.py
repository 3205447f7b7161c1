"""Report each epoch's validation metric to an Optuna trial and stop the run when its pruner
says so (``hydra.sweeper.pruner=median|hyperband`` in ``hparams_search=optuna``).

After every validation epoch (not the sanity check) the monitored metric (val/acc, val/map,
val/miou) goes to the trial as the intermediate value of that epoch (0-based, as in
TensorBoard). When the pruner judges the trial worse than the earlier ones at that epoch,
training stops at the end of the epoch, ``pruned_at_epoch`` records which one, and the
sweeper tells the study the trial was pruned. Under DDP rank 0 reports and decides, and the
decision is sent to every rank.
"""

import logging
import warnings

import lightning.pytorch as pl

log = logging.getLogger("cnnlab")


class TrialPruning(pl.Callback):
    def __init__(self, trial, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        self.pruned_at_epoch: int | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned_at_epoch is not None:
            return
        epoch, prune = trainer.current_epoch, False
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.is_global_zero and value is not None:
            with warnings.catch_warnings():  # a resumed run reports its epochs again: ignored
                warnings.filterwarnings("ignore", ".*already reported.*")
                self.trial.report(float(value), step=epoch)
            prune = self.trial.should_prune()
        prune = trainer.strategy.broadcast(prune, src=0)
        if not prune:
            return
        self.pruned_at_epoch = epoch
        trainer.should_stop = True
        if trainer.is_global_zero:
            log.info("Trial %d pruned at epoch %d: %s %.4f is worse than the pruner allows "
                     "at this epoch; training stops here.", self.trial.number, epoch, self.monitor,
                     float(value))  # fmt: skip


def pruned_at_epoch(trainer: pl.Trainer) -> int | None:
    """The epoch a trial was pruned at, or None (not pruned, or not a trial)."""
    for callback in trainer.callbacks:
        if isinstance(callback, TrialPruning):
            return callback.pruned_at_epoch
    return None
