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
        "e.g. --mean-over seed (mean ± standard deviation and the number of runs), and the "
        "statistics over KEY of one metric: n, mean, std, 95%% interval per group, and each "
        "group's paired t-test (Wilcoxon from 6 seeds) against the best group with a verdict, in "
        "comparison.md, comparison_seeds.csv and comparison_seeds.png",
    )
    parser.add_argument(
        "--metric",
        default=None,
        metavar="NAME",
        help="the metric --mean-over and --seeds-needed compare (default: the task's headline "
        "test metric: test/acc, test/map or test/miou)",
    )
    parser.add_argument(
        "--seeds-needed",
        type=_positive,
        default=None,
        metavar="DELTA",
        help="estimate how many seeds per group a paired t-test (two-sided, alpha 0.05) needs to "
        "tell apart a difference of DELTA in the metric with power 0.8, from the spread observed "
        "(implies --mean-over seed)",
    )
    return parser.parse_args(argv)


def _positive(text: str) -> float:
    """A difference to detect: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, e.g. 0.005, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    metrics = [m for item in args.metrics for m in item.split(",") if m] if args.metrics else None

    def body() -> None:
        from cnnlab.compare.comparison import compare

        text, written = compare(
            args.dirs,
            args.out,
            metrics,
            " ".join([PROG, *given]),
            args.mean_over,
            over_metric=args.metric,
            seeds_delta=args.seeds_needed,
        )
        print(text)
        for path in written:
            print(f"wrote {path}")

    run_or_exit(PROG, body)


if __name__ == "__main__":
    main()
