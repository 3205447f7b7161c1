"""comparison.md, comparison.csv and comparison.png: several runs, or a sweep, side by side."""

from pathlib import Path

from cnnlab.compare.curves import plot_comparison, run_val_tag
from cnnlab.compare.runs import best_run, find_runs, label_runs, monitor_of
from cnnlab.compare.table import choose_columns, csv_table, markdown_table, mean_table
from cnnlab.errors import UserError
from cnnlab.report.scalars import read_scalars


def compare(
    dirs: list[Path],
    out: Path | None = None,
    metrics: list[str] | None = None,
    command: str = "",
    mean_over: str | None = None,
) -> tuple[str, list[Path]]:
    """Read the runs under ``dirs``; write comparison.md, comparison.csv and comparison.png into
    ``out`` (default: the first of ``dirs``, a sweep folder or a run folder).

    The best run is the one whose task's monitored metric (val/acc, val/map, val/miou: what its
    best checkpoint is chosen by) peaked highest in any epoch. Returns the Markdown text and the
    files written.
    """
    runs = find_runs(dirs)
    shared = label_runs(runs)
    columns = choose_columns(runs, metrics)
    curves = [read_scalars(r.path) for r in runs]
    ranked = best_run(runs, curves)
    best = ranked[0] if ranked else None
    out = dirs[0] if out is None else out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"Cannot write into {out}: {e.strerror}. Give --out DIR.") from e

    lines = [f"# {len(runs)} runs compared", ""]
    if command:
        lines += [f"Made by `{command}`.", ""]
    if shared:
        lines += ["Common to all runs: " + " ".join(f"`{o}`" for o in shared) + ".", ""]
    if ranked:
        index, metric, value = ranked
        lines += [
            f"Best run: **{runs[index].label}**, {metric} = {value:.4f} (the highest {metric} of "
            "any epoch, the epoch its best checkpoint was kept from).",
            "",
        ]
    lines += [markdown_table(runs, columns, timed=True, best=best), ""]
    lines += [
        "time_s: wall-clock seconds from the first to the last line of each run's train.log "
        "(or, without it, between its first and last TensorBoard event).",
        "",
    ]
    if mean_over:
        lines += [mean_table(runs, columns, mean_over), ""]
    lines += [f"- {r.label}: {r.path} ({r.note})" for r in runs if r.note]
    text = "\n".join(lines).rstrip() + "\n"

    table = out / "comparison.md"
    table.write_text(text)
    spreadsheet = out / "comparison.csv"
    spreadsheet.write_text(csv_table(runs, columns, timed=True, best=best))
    figure = plot_comparison(
        [r.label for r in runs],
        curves,
        out / "comparison.png",
        title=" ".join(shared),
        val_tags=[run_val_tag(c, monitor_of(r.task)) for r, c in zip(runs, curves, strict=True)],
        best=best,
    )
    return text, [table, spreadsheet, figure]
