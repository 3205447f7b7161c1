"""docs/images/report.png: the top of the report page of a default run, as Chromium draws it.

    python scripts/report_screenshot.py                  # trains a default run first (~1-2 min)
    python scripts/report_screenshot.py --run RUN_DIR    # or reports on a finished run
    python scripts/report_screenshot.py --run RUN_DIR --section "Detection per class" \
        --until "Test predictions" --out docs/images/report_detection.png

Trains ``cnnlab-train hydra.run.dir=outputs/report-demo`` (digits, LeNet-5, 20 epochs) unless
--run is given, writes RUN_DIR/report.html with ``cnnlab-report RUN_DIR`` and saves a 1200x1800
headless-Chromium screenshot of it. With --section, the page is cut to its title and the
sections from that heading on (up to --until's heading) before the screenshot. Needs
``chromium`` (Debian: apt-get install chromium).
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1200, 1800  # pixels: metrics, curves and the confusion matrix fit


def cut(page: Path, first: str, until: str, out: Path) -> Path:
    """A copy of ``page`` with the title, then the sections from heading ``first`` up to
    heading ``until`` (or the end)."""
    html = page.read_text(encoding="utf-8")
    top, start = html.index("<h2>"), html.index(f"<h2>{first}</h2>")
    end = html.find(f"<h2>{until}</h2>", start)
    end = html.index("</body>") if end < 0 else end
    out.write_text(html[:top] + html[start:end] + "</body></html>\n", encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a finished run folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "report.png")
    parser.add_argument("--section", default=None, help="start at this <h2> heading")
    parser.add_argument("--until", default="Config", help="and stop before this one")
    parser.add_argument("--height", type=int, default=HEIGHT, help="pixels")
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
        page = (run_dir / "report.html").resolve()
        if args.section:
            page = cut(page, args.section, args.until, Path(profile) / "section.html")
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
                f"--window-size={WIDTH},{args.height}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    from PIL import Image  # 256 colours: a third of the bytes, the same to the eye

    Image.open(args.out).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
        args.out, optimize=True
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
