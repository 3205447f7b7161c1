"""Find the run folders behind the paths a user gives, read their final metrics, label them.

A run folder is one that Hydra wrote a ``.hydra/config.yaml`` into; a multirun sweep folder holds
one such folder per job (``0``, ``1``, ...). Runs are labelled by the overrides in which they
differ, so that a sweep over ``optimizer=`` reads ``optimizer=textbook/sgd``, ... in the legend.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from cnnlab.errors import UserError
from cnnlab.tasks.table import TASKS


@dataclass
class Run:
    """One run folder: its overrides, its final metrics (empty if it did not finish), a label."""

    path: Path
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    label: str = ""
    note: str = ""  # why something is missing, for the user
    task: str = "classification"  # data.task of its config: which metric ranks it
    seconds: float | None = None  # wall-clock time of the run (see run_seconds)


def is_run(folder: Path) -> bool:
    return (folder / ".hydra" / "config.yaml").is_file()


def _job_order(folder: Path) -> tuple[int, int | str]:
    """Sweep jobs ``0, 1, ..., 10`` in numeric order, other names after them alphabetically."""
    return (0, int(folder.name)) if folder.name.isdigit() else (1, folder.name)


def job_folders(folder: Path) -> list[Path]:
    """The folder itself if it is a run, else its sub-folders that are runs (a sweep)."""
    if is_run(folder):
        return [folder]
    return sorted((p for p in folder.iterdir() if p.is_dir() and is_run(p)), key=_job_order)


def read_run(folder: Path) -> Run:
    """The overrides and metrics.json of one run folder (missing pieces noted, not fatal)."""
    run = Run(path=folder, task=run_task(folder), seconds=run_seconds(folder))
    overrides = folder / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        run.overrides = [str(o) for o in OmegaConf.load(overrides) or []]
    metrics = folder / "metrics.json"
    try:
        run.metrics = json.loads(metrics.read_text())
    except FileNotFoundError:
        run.note = "no metrics.json: the run did not finish"
    except (OSError, ValueError) as e:
        run.note = f"metrics.json unreadable ({e})"
    return run


def run_task(folder: Path) -> str:
    """The run's ``data.task`` (classification, detection, segmentation); classification when
    its config does not say."""
    try:
        task = OmegaConf.select(OmegaConf.load(folder / ".hydra" / "config.yaml"), "data.task")
    except Exception:  # an unreadable config only costs the task: the default ranks the run
        task = None
    return str(task) if task else "classification"


# Hydra's log lines begin "[2026-11-27 10:13:51,924][cnnlab][INFO] - ...".
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]", re.MULTILINE)


def _log_span(path: Path) -> float | None:
    try:
        stamps = _LOG_TIME.findall(path.read_text(errors="replace"))
    except OSError:
        return None
    if len(stamps) < 2:
        return None
    first, last = (datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in (stamps[0], stamps[-1]))
    return (last - first).total_seconds()


def _event_span(folder: Path) -> float | None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from cnnlab.report.scalars import EVENTS

    times = []
    for events_dir in sorted({p.parent for p in folder.rglob(EVENTS)}):
        events = EventAccumulator(str(events_dir), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags().get("scalars", []):
            times += [e.wall_time for e in events.Scalars(tag)]
    return max(times) - min(times) if len(times) > 1 else None


def run_seconds(folder: Path) -> float | None:
    """How long the run took on the wall clock, or None when nothing says.

    From the first to the last time stamp of train.log: the whole command a user waited for,
    from "Run folder: ..." to the test results, data loading and the test included. A run without
    train.log (copied without it, or logging configured away) is timed by the first and last
    clock time in its event files instead: training, validation and testing, without start-up.
    """
    seconds = _log_span(folder / "train.log")
    return seconds if seconds is not None else _event_span(folder)


def find_runs(folders: list[Path]) -> list[Run]:
    """Every run under the given folders, in the order given, each once."""
    runs, seen = [], set()
    for folder in folders:
        if not folder.is_dir():
            raise UserError(
                f"No such folder: {folder}. Give run folders (outputs/train/<time>) or sweep "
                "folders (the one cnnlab-train -m printed) to compare."
            )
        jobs = job_folders(folder)
        if not jobs:
            raise UserError(
                f"{folder} holds no runs: a run folder has .hydra/config.yaml, a sweep folder "
                "has run folders (0, 1, ...) inside. Give folders that cnnlab-train wrote."
            )
        for job in jobs:
            if job.resolve() not in seen:
                seen.add(job.resolve())
                runs.append(read_run(job))
    return runs


def short_name(folder: Path) -> str:
    """The folder name, with its parent's when it is only a sweep job number."""
    return f"{folder.parent.name}/{folder.name}" if folder.name.isdigit() else folder.name


def label_runs(runs: list[Run]) -> list[str]:
    """Label every run by the overrides not shared by all runs; return the shared ones.

    A run with no differing overrides is labelled by its folder, and labels that would still
    clash get the folder name added, so that every line of a legend is told apart.
    """
    shared = [o for o in runs[0].overrides if all(o in r.overrides for r in runs)]
    for run in runs:
        own = [o for o in run.overrides if o not in shared]
        run.label = " ".join(own) or short_name(run.path)
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1 and run.label != short_name(run.path):
            run.label = f"{run.label} ({short_name(run.path)})"
    return shared


def monitored_metric(runs: list[Run]) -> str:
    """The validation metric the runs are ranked by: the checkpoint metric of their task
    (val/acc, val/map, val/miou); of the most common task when a set mixes tasks."""
    tasks = [r.task for r in runs]
    return monitor_of(max(tasks, key=tasks.count) if tasks else "classification")


def monitor_of(task: str) -> str:
    """The metric a run of ``task`` is ranked by (its row in the task table)."""
    return TASKS.get(task, TASKS["classification"]).monitor


def best_run(runs: list[Run], curves: list[dict]) -> tuple[int, str, float] | None:
    """(index, metric, value) of the run that reached the highest monitored metric in any epoch,
    the epoch its best checkpoint was kept from; None when no run has that metric.

    ``curves`` are the runs' scalars (read_scalars); a run without the curve is ranked by the
    final value in its metrics.json. The first run wins a tie.
    """
    import math

    metric = monitored_metric(runs)
    best = None
    for i, (run, scalars) in enumerate(zip(runs, curves, strict=True)):
        curve = scalars.get(metric)
        values = [float(v) for v in curve[:, 1]] if curve is not None and len(curve) else []
        final = run.metrics.get(metric)
        if not values and isinstance(final, int | float):
            values = [float(final)]
        values = [v for v in values if math.isfinite(v)]
        if values and (best is None or max(values) > best[2]):
            best = (i, metric, max(values))
    return best
