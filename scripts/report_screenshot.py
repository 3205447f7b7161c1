"""docs/images/report.png: the top of the report page of a default run, as Chromium draws it.

    python scripts/report_screenshot.py                  # trains a default run first (~1-2 min)
    python scripts/report_screenshot.py --run RUN_DIR    # or reports on a finished run

Trains ``cnnlab-train hydra.run.dir=outputs/report-demo`` (digits, LeNet-5, 20 epochs) unless
--run is given, writes RUN_DIR/report.html with ``cnnlab-report RUN_DIR`` and saves a 1200x1800
headless-Chromium screenshot of it. Needs ``chromium`` (Debian: apt-get install chromium).
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1200, 1800  # pixels: metrics, curves and the confusion matrix fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a finished run folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "report.png")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("no chromium on PATH: apt-get install chromium")

    run_dir = args.run
    if run_dir is None:
        run_dir = ROOT / "outputs" / "report-demo"
        subprocess.run(["cnnlab-train", f"hydra.run.dir={run_dir}"], check=True, cwd=ROOT)
    subprocess.run(["cnnlab-report", str(run_dir)], check=True, cwd=ROOT)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={args.out}",
                f"--window-size={WIDTH},{HEIGHT}",
                (run_dir / "report.html").resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
