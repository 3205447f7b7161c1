"""The comparison table: one row per run, one column per final metric, as Markdown and CSV.

Beside the metrics, ``time_s`` holds each run's wall-clock seconds (Run.seconds) and ``best``
says ``yes`` in the row of the run ranked best by its task's monitored metric.
"""

import csv
import io

from cnnlab.compare.runs import Run
from cnnlab.errors import UserError

# Columns shown when the user names none: test metrics, then validation, then the epoch count
# and the network's parameter count (``params``);
# within a group these lead and the rest follow alphabetically. A classifier's recall per class
# (test/recall_<class>: a column each, a hundred on CIFAR-100) is shown only when named.
_LEADING = ("test/acc", "test/loss", "val/acc", "val/loss")
_PER_CLASS = ("test/recall_",)
_INTEGERS = ("epoch", "global_step", "params")
TIME = "time_s"
BEST = "best"


def _default_order(key: str) -> tuple[int, int, str]:
    group = 0 if key.startswith("test/") else 1 if key.startswith("val/") else 2
    lead = _LEADING.index(key) if key in _LEADING else len(_LEADING)
    return group, lead, key


def choose_columns(runs: list[Run], requested: list[str] | None = None) -> list[str]:
    """The metric columns: those requested (each must exist in some run) or the defaults."""
    available = sorted({key for run in runs for key in run.metrics})
    if requested:
        unknown = [key for key in requested if key not in available]
        if unknown:
            raise UserError(
                f"No run has the metric {', '.join(unknown)}. The runs have: "
                f"{', '.join(available) or 'no metrics at all'}."
            )
        return list(requested)
    shown = [k for k in available if k.startswith(("test/", "val/")) or k in ("epoch", "params")]
    return sorted((k for k in shown if not k.startswith(_PER_CLASS)), key=_default_order)


def _cell(value: float | int | str | None, key: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):  # "nan" and "inf" are stored as strings
        return value
    return str(int(value)) if key in _INTEGERS else f"{value:.4f}"


def _extra_columns(timed: bool, best: int | None) -> list[str]:
    return [TIME] * timed + [BEST] * (best is not None)


def _extra_cells(run: Run, index: int, timed: bool, best: int | None, places: int) -> list[str]:
    cells = []
    if timed:
        cells.append("–" if run.seconds is None else f"{run.seconds:.{places}f}")
    if best is not None:
        cells.append("yes" if index == best else "")
    return cells


def markdown_table(
    runs: list[Run], columns: list[str], *, timed: bool = False, best: int | None = None
) -> str:
    """A GitHub-flavoured Markdown table, one line per run in the order given; ``timed`` adds
    the time_s column, ``best`` (an index into ``runs``) the best column."""
    header = ["run", *columns, *_extra_columns(timed, best)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    for i, run in enumerate(runs):
        cells = [run.label.replace("|", "\\|")]
        cells += [_cell(run.metrics.get(key), key) for key in columns]
        cells += _extra_cells(run, i, timed, best, places=1)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_table(
    runs: list[Run], columns: list[str], *, timed: bool = False, best: int | None = None
) -> str:
    """The same rows as markdown_table, for a spreadsheet or pandas: full precision, an empty
    cell where a value is missing, the run's folder in the last column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run", *columns, *_extra_columns(timed, best), "path"])
    for i, run in enumerate(runs):
        values = [run.metrics.get(key) for key in columns]
        cells = ["" if v is None else str(v) for v in values]
        extra = [c.replace("–", "") for c in _extra_cells(run, i, timed, best, places=3)]
        writer.writerow([run.label, *cells, *extra, str(run.path)])
    return buffer.getvalue()


def mean_table(runs: list[Run], columns: list[str], over: str) -> str:
    """Runs that differ only in the override ``over=...`` (e.g. ``seed``), averaged: one row per
    group with the mean, the standard deviation across runs and their number."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        rest = [p for p in run.label.split(" ") if not p.startswith(f"{over}=")]
        groups.setdefault(" ".join(rest) or "(all)", []).append(run)
    lines = [
        "| " + " | ".join([f"runs (mean over {over})", "n", *columns]) + " |",
        "| " + " | ".join(["---"] * (len(columns) + 2)) + " |",
    ]
    for label, members in groups.items():
        cells = [label.replace("|", "\\|"), str(len(members))]
        for key in columns:
            values = [r.metrics.get(key) for r in members]
            numbers = [v for v in values if isinstance(v, int | float)]
            cells.append(mean_cell(numbers) if numbers else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_cell(numbers: list[int | float]) -> str:
    """Mean ± sample standard deviation; a count the runs share (epochs, parameters) as it is."""
    if all(isinstance(v, int) for v in numbers) and len(set(numbers)) == 1:
        return str(numbers[0])
    mean = sum(numbers) / len(numbers)
    std = (sum((v - mean) ** 2 for v in numbers) / max(1, len(numbers) - 1)) ** 0.5
    return f"{mean:.4f} ± {std:.4f}" if len(numbers) > 1 else f"{mean:.4f}"
