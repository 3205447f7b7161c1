"""cnnlab-compare DIR...: a table and overlaid curves for several runs or a multirun sweep."""

import argparse
import sys
from pathlib import Path

from cnnlab.cli.plain_app import run_or_exit

PROG = "cnnlab-compare"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compare finished cnnlab runs: comparison.md and comparison.csv (the "
        "overrides that differ, the final metrics and the wall-clock time, one row per run, the "
        "best run marked) and comparison.png (train/loss per step and the task's validation "
        "metric per epoch, one line per run, the best run drawn thicker with a star).",
    )
    parser.add_argument(
        "dirs",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="run folders, or sweep folders whose job folders (0, 1, ...) are compared",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write comparison.md, comparison.csv and comparison.png (default: the "
        "first DIR, the sweep folder when it is one)",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        metavar="NAME",
        help="table columns, e.g. --metrics test/acc test/loss epoch (default: the test and "
        "validation metrics and the epoch count)",
    )
    parser.add_argument(
        "--mean-over",
        default=None,
        metavar="KEY",
        help="also a table averaged over the runs that differ only in the override KEY=..., "
        "e.g. --mean-over seed (mean ± standard deviation and the number of runs)",
    )
    return parser.parse_args(argv)


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
    from cnnlab.cli.resolvers import task_monitor
    from cnnlab.errors import UserError
    from cnnlab.report.curves import plot_comparison, run_val_tag
    from cnnlab.report.runs import best_run, find_runs, label_runs
    from cnnlab.report.scalars import read_scalars
    from cnnlab.report.table import choose_columns, csv_table, markdown_table, mean_table

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
        val_tags=[run_val_tag(c, task_monitor(r.task)) for r, c in zip(runs, curves, strict=True)],
        best=best,
    )
    return text, [table, spreadsheet, figure]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    metrics = [m for item in args.metrics for m in item.split(",") if m] if args.metrics else None

    def body() -> None:
        text, written = compare(
            args.dirs, args.out, metrics, " ".join([PROG, *given]), args.mean_over
        )
        print(text)
        for path in written:
            print(f"wrote {path}")

    run_or_exit(PROG, body)


if __name__ == "__main__":
    main()
