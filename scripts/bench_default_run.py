"""Time the README's default run (`cnnlab-train`: LeNet-5 on the bundled digits) end to end.

    python scripts/bench_default_run.py --repeats 3

For each repeat: the whole process's wall time (imports included), the training time (first to
last line of fit in train.log), and test/acc from metrics.json. Prints a Markdown table row per
repeat for docs/benchmarks.md. Run it on a quiet machine: other work on the cores skews it.
"""

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def fit_seconds(log: str) -> float:
    """Seconds from the first line of Trainer set-up to `Trainer.fit` stopped, from train.log."""
    times = {}
    for line in log.splitlines():
        m = STAMP.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if "GPU available" in line and "start" not in times:
            times["start"] = t
        if "`Trainer.fit` stopped" in line:
            times["end"] = t
    return times["end"] - times["start"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="extra cnnlab-train overrides")
    args = parser.parse_args()
    exe = shutil.which("cnnlab-train") or str(Path(sys.executable).parent / "cnnlab-train")
    print(f"# {platform.processor() or platform.machine()}, {platform.python_version()}")
    print("| repeat | wall s (process) | fit s | test/acc |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            run_dir = Path(tmp) / f"run{i}"
            start = time.perf_counter()
            subprocess.run(
                [exe, f"hydra.run.dir={run_dir}", *args.overrides],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - start
            fit = fit_seconds((run_dir / "train.log").read_text())
            acc = json.loads((run_dir / "metrics.json").read_text())["test/acc"]
            print(f"| {i + 1} | {wall:.1f} | {fit:.1f} | {acc:.4f} |")


if __name__ == "__main__":
    main()
