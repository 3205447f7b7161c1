"""What a report page shows about a run, read from its folder: config, metrics, curves, times.

Nothing here runs the model; the test-split analyses live in ``report/analysis.py``.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.errors import UserError
from cnnlab.report.epoch_times import epoch_seconds

# best-epoch007-acc0.9889.ckpt: the monitored value is the last number of the name.
_SCORE = re.compile(r"(-?\d+(?:\.\d+)?)\.ckpt$")


@dataclass
class RunData:
    """The files of one run folder, read into what the page needs."""

    path: Path
    config_text: str
    task: str
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    scalars: dict[str, np.ndarray] = field(default_factory=dict)
    epoch_times: list[tuple[int, float]] = field(default_factory=list)
    times_source: str = ""
    checkpoint: Path | None = None
    notes: list[str] = field(default_factory=list)  # what is missing, for the reader


def best_checkpoint(run_dir: Path) -> Path | None:
    """The best-*.ckpt with the highest monitored value (every task's monitor is maximised),
    else last.ckpt, else None."""
    folder = run_dir / "checkpoints"
    best = sorted(folder.glob("best-*.ckpt"))
    if best:
        scored = [(float(m.group(1)) if (m := _SCORE.search(p.name)) else 0.0, p) for p in best]
        return max(scored, key=lambda item: item[0])[1]
    last = folder / "last.ckpt"
    return last if last.is_file() else None


def check_run_folder(run_dir: Path) -> None:
    """A UserError that names the path and what is missing, unless ``run_dir`` is a run folder."""
    if not run_dir.exists():
        raise UserError(
            f"No such folder: {run_dir}. Give cnnlab-report the run folder that cnnlab-train "
            "printed (outputs/train/<date>/<time>)."
        )
    if not run_dir.is_dir():
        raise UserError(
            f"{run_dir} is a file, not a run folder. Give the folder cnnlab-train made."
        )
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise UserError(
            f"{run_dir} is not a run folder: {run_dir / '.hydra' / 'config.yaml'} is missing. "
            "Give the folder cnnlab-train made (it holds .hydra/, checkpoints/, metrics.json)."
        )


def read_metrics(run_dir: Path, notes: list[str]) -> dict:
    path = run_dir / "metrics.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        notes.append("No metrics.json: the run did not finish, so there are no final metrics.")
    except (OSError, ValueError) as e:
        notes.append(f"metrics.json could not be read ({e}).")
    return {}


def collect(run_dir: Path) -> RunData:
    """Read everything the page shows from ``run_dir``; missing parts become notes."""
    from omegaconf import OmegaConf

    from cnnlab.report.scalars import read_scalars

    check_run_folder(run_dir)
    config_file = run_dir / ".hydra" / "config.yaml"
    config_text = config_file.read_text()
    task = str(OmegaConf.load(config_file).get("data", {}).get("task", "classification"))
    data = RunData(path=run_dir, config_text=config_text, task=task)
    data.metrics = read_metrics(run_dir, data.notes)
    data.scalars = read_scalars(run_dir)
    if not data.scalars:
        data.notes.append("No TensorBoard event files: there are no curves to draw.")
    data.epoch_times, data.times_source = epoch_seconds(run_dir)
    data.checkpoint = best_checkpoint(run_dir)
    if data.checkpoint is None:
        data.notes.append(
            f"No checkpoint in {run_dir / 'checkpoints'}: the test-split analyses are left out."
        )
    return data
