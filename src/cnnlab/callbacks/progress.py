"""What the terminal shows: a rich progress bar in a terminal, plain lines otherwise."""

import logging
import sys
import time

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

log = logging.getLogger("cnnlab")


class EpochSummary(pl.Callback):
    """One log line per epoch (to the console and train.log) with the epoch's metrics."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a run resumed mid-epoch starts there: Lightning calls no on_train_epoch_start for it
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith(("train/", "val/")) or k == "lr"
        }
        shown = "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        seconds = time.perf_counter() - self._start
        log.info(
            "epoch %d/%d  step %d  %s  (%.1fs)",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            trainer.global_step,
            shown,
            seconds,
        )


class PlainProgress(ProgressBar):
    """Stands in for a progress bar when the output is not a terminal (CI, a file).

    A live bar would fill a log with carriage returns; EpochSummary prints the lines instead,
    so this one stays silent and only keeps Lightning from adding its own tqdm bar.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True


def auto_progress_bar(kind: str = "auto") -> ProgressBar:
    """``rich`` in a terminal, ``plain`` otherwise; ``kind`` forces either."""
    if kind == "auto":
        kind = "rich" if sys.stdout.isatty() else "plain"
    return RichProgressBar() if kind == "rich" else PlainProgress()


# Sections shown first in the config tree, in the order a reader looks for them; the rest follow.
_TREE_ORDER = ("data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths")


def print_config_tree(config: dict, file=None) -> None:
    """Print the composed config as a tree, one branch per top-level key, each holding its YAML.

    rich colours it in a terminal and writes plain text (still with the tree's guide lines)
    into a file or a pipe.
    """
    import yaml
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    keys = [k for k in _TREE_ORDER if k in config] + [k for k in config if k not in _TREE_ORDER]
    for key in keys:
        value = config[key]
        if isinstance(value, dict | list):
            text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip()
            tree.add(key).add(Syntax(text, "yaml", background_color="default"))
        else:
            tree.add(f"{key}: {value}")
    Console(file=file or sys.stdout).print(tree)
