"""What a checkpoint needs, besides Lightning's own state, for a resumed run to continue exactly.

Lightning stores the weights, the optimizer and scheduler, the loop position and (for a loader
with ``state_dict``) where the training loader stood. It leaves out:

- the global random generators (torch, CUDA, numpy, Python's ``random``): dropout, and any
  augmentation drawn in the main process, take their numbers from them;
- the running state of the epoch metrics (torchmetrics objects such as ``train/acc``, updated on
  every batch and computed at the epoch's end): a run resumed mid-epoch would otherwise report
  that epoch's accuracy over the batches after the resume only;
- event files: a TensorBoard writer keeps up to ten events in memory, so a killed run would lose
  points that its last checkpoint already covers.

All of it is stored as tensors and plain lists, so ``torch.load(weights_only=True)`` reads it.
"""

import logging
import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torchmetrics import Metric

from cnnlab.data.loaders import restore_loader_states

log = logging.getLogger(__name__)

KEY = "cnnlab_resume_state"


def random_states() -> dict[str, Any]:
    """The global generators' states as tensors, numbers and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(cuda),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [version, list(internal), gauss_next],
    }


def set_random_states(states: dict[str, Any]) -> None:
    """Put back what ``random_states`` returned."""
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def metric_states(module: torch.nn.Module) -> dict[str, dict[str, Any]]:
    """The running state of every torchmetrics object in ``module``, by its module name."""
    return {
        name: {"state": dict(m.metric_state), "updates": int(m._update_count)}
        for name, m in module.named_modules()
        if isinstance(m, Metric)
    }


def set_metric_states(module: torch.nn.Module, saved: dict[str, dict[str, Any]]) -> None:
    metrics = {name: m for name, m in module.named_modules() if isinstance(m, Metric)}
    for name, entry in saved.items():
        metric = metrics.get(name)
        if metric is None:
            continue
        for state, value in entry["state"].items():
            if isinstance(value, torch.Tensor):
                value = value.to(metric.device)
            elif isinstance(value, list):
                value = [v.to(metric.device) for v in value]
            setattr(metric, state, value)
        metric._update_count = entry["updates"]
        metric._computed = None  # a cached result belongs to the states just replaced


class ResumeState(pl.Callback):
    """Stores the random generators and the epoch metrics' running state in every checkpoint,
    flushes the loggers before it is written, and puts both states back on resume. It also makes
    sure a resumed run hands the training loaders their state from the checkpoint
    (``restore_loader_states``).

    The states go back at the last moment before training continues: the metrics when
    training starts (after the sanity check's validation), the generators just before the first
    training batch (after the loaders' iterators were made, which draw from them too).
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._loader_states: list[dict] = []

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[KEY] = {"random": random_states(), "metrics": metric_states(pl_module)}
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.save()  # CSVLogger writes its rows here
                flush = getattr(getattr(logger, "experiment", None), "flush", None)
                if callable(flush):  # TensorBoard's SummaryWriter
                    flush()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._pending = checkpoint.get(KEY)
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        self._loader_states = fit_loop.get("state_dict", {}).get("combined_loader", [])
        if self._pending is None:
            log.info("The checkpoint holds no random states: the resumed run draws anew.")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._loader_states:
            restore_loader_states(trainer, self._loader_states)
            self._loader_states = []
        if self._pending is not None:
            set_metric_states(pl_module, self._pending.get("metrics", {}))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._pending is not None:
            set_random_states(self._pending["random"])
            self._pending = None
