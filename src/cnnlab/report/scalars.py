"""Curves of a run, read back from its TensorBoard event files."""

from pathlib import Path

import numpy as np

EVENTS = "events.out.tfevents.*"


def read_scalars(run_dir: Path) -> dict[str, np.ndarray]:
    """Every scalar tag of the run -> array of (step, value) rows, sorted by step.

    All event files under the run folder are read (Lightning writes one for fitting and one for
    testing), keeping every point: TensorBoard would otherwise sample long curves down.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[str, list[tuple[float, float]]] = {}
    for folder in sorted({p.parent for p in run_dir.rglob(EVENTS)}):
        accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags().get("scalars", []):
            points.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return {
        tag: np.array(sorted(rows, key=lambda row: row[0]), dtype=float).reshape(-1, 2)
        for tag, rows in points.items()
    }


def per_epoch(scalars: dict[str, np.ndarray], tag: str) -> np.ndarray:
    """An epoch-level curve as (epochs completed, value) rows.

    Lightning logs epoch metrics at a global step and, beside them, an ``epoch`` tag holding the
    0-based epoch at that step; without it the points are counted 1, 2, 3, ...
    """
    curve = scalars.get(tag)
    if curve is None or not len(curve):
        return np.empty((0, 2))
    epochs = {step: value for step, value in scalars.get("epoch", np.empty((0, 2)))}
    if all(step in epochs for step in curve[:, 0]):
        x = np.array([epochs[step] + 1 for step in curve[:, 0]])
    else:
        x = np.arange(1, len(curve) + 1, dtype=float)
    return np.column_stack([x, curve[:, 1]])
