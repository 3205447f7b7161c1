"""comparison.md, comparison.csv and comparison.png: several runs, or a sweep, side by side."""

from pathlib import Path

from cnnlab.compare.curves import plot_comparison, run_val_tag
from cnnlab.compare.runs import Run, best_run, find_runs, label_runs, monitor_of
from cnnlab.compare.seed_figure import plot_seed_means
from cnnlab.compare.seed_groups import group_runs, repeats_over
from cnnlab.compare.seed_report import (
    seed_csv,
    seed_markdown,
    seed_metric,
    seed_rows,
    seeds_needed_text,
)
from cnnlab.compare.table import choose_columns, csv_table, markdown_table, mean_table
from cnnlab.errors import UserError
from cnnlab.report.scalars import read_scalars


def compare(
    dirs: list[Path],
    out: Path | None = None,
    metrics: list[str] | None = None,
    command: str = "",
    mean_over: str | None = None,
    over_metric: str | None = None,
    seeds_delta: float | None = None,
) -> tuple[str, list[Path]]:
    """Read the runs under ``dirs``; write comparison.md, comparison.csv and comparison.png into
    ``out`` (default: the first of ``dirs``, a sweep folder or a run folder).

    The best run is the one whose task's monitored metric (val/acc, val/map, val/miou: what its
    best checkpoint is chosen by) peaked highest in any epoch. ``mean_over`` (e.g. ``seed``) adds
    the statistics over that key (comparison_seeds.csv and .png) of ``over_metric``; ``seeds_delta``
    the number of seeds that would tell apart that difference (and implies ``mean_over="seed"``).
    Runs that repeat a setting over ``seed=...`` overrides (a sweep with ``seed=1,2,3``) get the
    statistics over seeds without being asked. Returns the Markdown text and the files written.
    """
    mean_over = mean_over or ("seed" if seeds_delta is not None else None)
    runs = find_runs(dirs)
    shared = label_runs(runs)
    if mean_over is None and repeats_over(runs, "seed", shared):
        mean_over = "seed"  # the report of a sweep over seeds says what the seeds say
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
    seed_files = []
    if mean_over:
        lines += [mean_table(runs, columns, mean_over), ""]
    lines += [f"- {r.label}: {r.path} ({r.note})" for r in runs if r.note]
    if mean_over:
        section, seed_files = over_seeds(runs, shared, mean_over, over_metric, seeds_delta, out)
        lines += ["", section]
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
    return text, [table, spreadsheet, figure, *seed_files]


def over_seeds(
    runs: list[Run],
    shared: list[str],
    key: str,
    metric: str | None,
    seeds_delta: float | None,
    out: Path,
) -> tuple[str, list[Path]]:
    """The statistics over ``key`` (seed): the Markdown section (with the seeds-needed estimate
    when ``seeds_delta`` is given), comparison_seeds.csv and comparison_seeds.png."""
    name, why = seed_metric(runs, metric)
    rows = seed_rows(group_runs(runs, name, key, shared), name, key)
    text = seed_markdown(rows, name, why, key)
    if seeds_delta is not None:
        text += "\n" + seeds_needed_text(rows, seeds_delta, name, key) + "\n"
    spreadsheet = out / "comparison_seeds.csv"
    spreadsheet.write_text(seed_csv(rows, name))
    return text, [spreadsheet, plot_seed_means(rows, name, out / "comparison_seeds.png", key)]
