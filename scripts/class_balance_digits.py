"""data.balance=none, sampler and loss on the imbalanced digits (data=digits_imbalanced: digits
5-9 keep 1 in 20 of their training images); prints test/balanced_acc and test/acc as a
Markdown table, one row per data.balance.

    python scripts/class_balance_digits.py --epochs 5 --seeds 1 2 3

Nine processes: 4.5 min with --epochs 5 and 18 min with --epochs 20 on a busy, shared 2-core
CPU (the README's table).

Each run is a real `cnnlab-train` process (LeNet-5, the defaults otherwise, no logger) with its
own run folder under --out; the numbers come from its metrics.json. A run folder that already
holds a metrics.json is read, not trained again.
"""

import argparse
import json
import statistics
import subprocess
from pathlib import Path

BALANCE = ("none", "sampler", "loss")


def run(out: Path, balance: str, epochs: int, seed: int) -> dict:
    """The metrics of one cnnlab-train run, trained now unless its folder has them."""
    run_dir = out / f"{balance}_epochs{epochs}_seed{seed}"
    if not (run_dir / "metrics.json").is_file():
        cmd = ["cnnlab-train", "data=digits_imbalanced", f"data.balance={balance}",
               f"seed={seed}", f"trainer.max_epochs={epochs}", "logger=none",
               f"hydra.run.dir={run_dir}"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
    return json.loads((run_dir / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", default="outputs/class_balance_digits")
    args = parser.parse_args()
    seeds = ", ".join(str(s) for s in args.seeds)
    print(f"\n{args.epochs} epochs, LeNet-5 on data=digits_imbalanced\n")
    print(f"| data.balance | test/balanced_acc, seeds {seeds} | mean | test/acc, mean |")
    print("| --- | --- | ---: | ---: |")
    for balance in BALANCE:
        metrics = [run(Path(args.out), balance, args.epochs, s) for s in args.seeds]
        balanced = [m["test/balanced_acc"] for m in metrics]
        accuracy = statistics.mean(m["test/acc"] for m in metrics)
        print(f"| {balance} | {', '.join(f'{v:.3f}' for v in balanced)} | "
              f"{statistics.mean(balanced):.3f} | {accuracy:.3f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
