"""recipe=modern against recipe=plain with ResNet-20 on the digits (3 seeds each), and the
epoch-to-epoch spread of val/acc with and without recipe.ema_decay; prints two Markdown tables.

    python scripts/recipe_digits.py --epochs 12 --out /tmp/recipes      # about 20 min on 2 cores

Each run is a real `cnnlab-train` process with its own run folder under --out; test/acc comes
from its metrics.json, the val/acc curve from its TensorBoard events. Spread: the standard
deviation of the change in val/acc from one epoch to the next, over the second half of the run
(where a smooth curve changes little).
"""

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from tensorboard.backend.event_processing import event_accumulator as ea

SEEDS = (1, 2, 3)


def run(out: Path, name: str, epochs: int, seed: int, *overrides: str) -> Path:
    run_dir = out / f"{name}_seed{seed}"
    if not (run_dir / "metrics.json").is_file():
        cmd = ["cnnlab-train", "model=resnet20", f"seed={seed}", f"trainer.max_epochs={epochs}",
               "callbacks.tensorboard_images=null", f"hydra.run.dir={run_dir}",
               *overrides]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        print(f"{name} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    return run_dir


def val_curve(run_dir: Path) -> list[float]:
    events = ea.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={ea.SCALARS: 0})
    return [e.value for e in events.Reload().Scalars("val/acc")]


def spread(curve: list[float]) -> float:
    tail = curve[len(curve) // 2 :]
    return statistics.pstdev(b - a for a, b in zip(tail, tail[1:], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", default="outputs/recipe_digits")
    args = parser.parse_args()
    out = Path(args.out)
    runs = {
        "plain": [],
        "modern": [],
        "plain + ema_decay=0.999": [],
    }
    extra = {"plain": ["recipe=plain"], "modern": ["recipe=modern"],
             "plain + ema_decay=0.999": ["recipe=plain", "recipe.ema_decay=0.999"]}  # fmt: skip
    for name, overrides in extra.items():
        for seed in SEEDS:
            folder = name.split(" ")[0] + ("_ema" if "ema" in name else "")
            runs[name].append(run(out, folder, args.epochs, seed, *overrides))
    results = {}
    for name, dirs in runs.items():
        tests = [json.loads((d / "metrics.json").read_text())["test/acc"] for d in dirs]
        spreads = [spread(val_curve(d)) for d in dirs]
        results[name] = {"test_acc": tests, "spread": spreads}
    print(json.dumps(results, indent=2))
    print("\n| recipe | test/acc, seeds 1-3 | mean |\n| --- | --- | ---: |")
    for name in ("plain", "modern"):
        t = results[name]["test_acc"]
        print(f"| {name} | {', '.join(f'{v:.4f}' for v in t)} | {statistics.mean(t):.4f} |")
    print("\n| run | val/acc epoch-to-epoch spread, seeds 1-3 | mean |\n| --- | --- | ---: |")
    for name in ("plain", "plain + ema_decay=0.999"):
        s = results[name]["spread"]
        print(f"| {name} | {', '.join(f'{v:.4f}' for v in s)} | {statistics.mean(s):.4f} |")


if __name__ == "__main__":
    main()
