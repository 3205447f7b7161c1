"""cnnlab-report RUN_DIR: one self-contained HTML page about a finished run."""

import argparse
from pathlib import Path

from cnnlab.cli.plain_app import run_or_exit

PROG = "cnnlab-report"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write RUN_DIR/report.html: the config, final metrics, curves, time per "
        "epoch and parameter count of a run, and its best checkpoint on the test split "
        "(classifiers: confusion matrix, per-class accuracy, confident mistakes with their "
        "Grad-CAM, first-layer filters; detectors: per-class AP and precision-recall curves, "
        "the confusion matrix with a background row and column, false detections and missed "
        "objects; segmentation: per-class IoU and the worst images). One file, images inline, "
        "no server.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a cnnlab-train run folder")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="report.KEY=VALUE",
        help="detection thresholds: report.iou_threshold=0.5 (a detection finds an object at "
        "this IoU) and report.score_threshold=0.5 (detections scoring less are left out of "
        "the confusion matrix and galleries); default: the run's own values",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the page (default RUN_DIR/report.html)",
    )
    parser.add_argument(
        "--max-images",
        type=int,
        default=None,
        metavar="N",
        help="analyse only the first N test images (default: all of them)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    def body() -> None:
        from cnnlab.report.html import write_report

        print(f"wrote {write_report(args.run_dir, args.out, args.max_images, args.overrides)}")

    run_or_exit(PROG, body)


if __name__ == "__main__":
    main()
