"""Find the run folders behind the paths a user gives, read their final metrics, label them.

A run folder is one that Hydra wrote a ``.hydra/config.yaml`` into; a multirun sweep folder holds
one such folder per job (``0``, ``1``, ...). Runs are labelled by the overrides in which they
differ, so that a sweep over ``optimizer=`` reads ``optimizer=textbook/sgd``, ... in the legend.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from cnnlab.errors import UserError


@dataclass
class Run:
    """One run folder: its overrides, its final metrics (empty if it did not finish), a label."""

    path: Path
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    label: str = ""
    note: str = ""  # why something is missing, for the user


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
    run = Run(path=folder)
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
