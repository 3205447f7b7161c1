"""TensorBoard's HPARAMS tab: the run's chosen settings beside its final metrics, so that the
runs of a ``-m`` sweep line up in one table there."""

import re

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams as hparams_summary

# "cnnlab.models.lenet.lenet" or "torch.optim.Adam": a builder's import path, shown by its last part
IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def short_value(value):
    """What the table shows for a setting: import paths by their last part, lists as text."""
    if isinstance(value, str) and IMPORT_PATH.match(value):
        return value.rsplit(".", 1)[-1]
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


class LogHparams(pl.Callback):
    """Writes ``params`` (flat name -> scalar or string, None left out) with the final ``val/*``
    and ``test/*`` metrics to every TensorBoardLogger, once, when testing ends.

    The hparams plugin keeps only the first summary of a run folder, so it is written once: after
    the test that follows training (cnnlab-train always tests), with the validation metrics of
    the end of training. A metric's value in the table is the last point of the scalar of that
    name: the last validation epoch's and the test's.
    """

    def __init__(self, params: dict) -> None:
        self.params = {k: short_value(v) for k, v in dict(params).items() if v is not None}
        self.fit_metrics: dict[str, float] = {}

    @staticmethod
    def _metrics(trainer: pl.Trainer, prefix: str) -> dict[str, float]:
        return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.fit_metrics = self._metrics(trainer, "val/")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:  # one table per run: rank 0 writes it
            return
        metrics = {**self.fit_metrics, **self._metrics(trainer, "test/")}
        if not metrics:
            return
        # Only the plugin's summaries are written: the table takes each metric's value from the
        # last point of the scalar of that name, which training and testing logged already.
        # (Lightning's log_hyperparams would log the metrics again, one stray point per curve.)
        summaries = hparams_summary(self.params, metrics)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment._get_file_writer()  # as Lightning's own logger does
                for summary in summaries:
                    writer.add_summary(summary)
                writer.flush()
