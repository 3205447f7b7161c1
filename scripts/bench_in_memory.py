"""The in-memory data path against the ordinary DataLoader path, on this machine's CPU.

    python scripts/bench_in_memory.py [--epochs 5]

1. Images/s of one training epoch of each loader, augmentation on, nothing else done with the
   batches: digits (1,257 training images, 32x32 grey, shift 2) and 50,000 CIFAR-shaped synthetic
   uint8 images (32x32 RGB, shift 4 and flips, batch 128) generated in memory.
2. The default run (`cnnlab-train`: LeNet-5 on digits) with data.in_memory=false and =true:
   training images/s over `Trainer.fit` (validation each epoch included), from train.log.
Prints the load average beside: other work on the cores skews every figure.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))
from bench_default_run import fit_seconds  # noqa: E402

from cnnlab.data.digits import DigitsDataModule, TensorImageDataset  # noqa: E402
from cnnlab.data.in_memory import InMemoryLoader  # noqa: E402
from cnnlab.data.transforms import classification_transforms  # noqa: E402

CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def images_per_second(loader) -> float:
    start, n = time.perf_counter(), 0
    for _, y in loader:
        n += len(y)
    return n / (time.perf_counter() - start)


def loader_rows() -> list[tuple[str, float, float]]:
    rows = []
    plain, memory = DigitsDataModule(in_memory=False), DigitsDataModule(in_memory=True)
    plain.setup()
    memory.setup()
    images_per_second(memory.train_dataloader())  # warm-up
    rows.append(
        (
            "digits 1,257 x 1x32x32",
            images_per_second(plain.train_dataloader()),
            images_per_second(memory.train_dataloader()),
        )
    )

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50_000, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (50_000,), generator=g)
    train_tf = classification_transforms(
        train=True,
        image_size=32,
        native_size=32,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        shift=4,
        hflip=True,
    )
    ordinary = DataLoader(
        TensorImageDataset(images, labels, train_tf), batch_size=128, shuffle=True
    )
    in_memory = InMemoryLoader(
        images, labels, batch_size=128, mean=CIFAR_MEAN, std=CIFAR_STD,
        shuffle=True, augment=True, shift=4, hflip=True,
    )  # fmt: skip
    rows.append(
        ("CIFAR-shaped 50,000 x 3x32x32", images_per_second(ordinary), images_per_second(in_memory))
    )
    return rows


def train_throughput(in_memory: bool, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cnnlab.cli.train",
                f"trainer.max_epochs={epochs}",
                f"data.in_memory={str(in_memory).lower()}",
                f"hydra.run.dir={tmp}",
            ],  # fmt: skip
            check=True,
            capture_output=True,
        )
        return epochs * 1257 / fit_seconds((Path(tmp) / "train.log").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"load average before: {os.getloadavg()}")
    print("| loader, one training epoch | ordinary images/s | in-memory images/s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, plain, memory in loader_rows():
        print(f"| {name} | {plain:,.0f} | {memory:,.0f} | {memory / plain:.1f}x |")
    plain, memory = (train_throughput(flag, args.epochs) for flag in (False, True))
    print(f"| LeNet digits fit, {args.epochs} epochs (train img/s) | {plain:,.0f} | {memory:,.0f} "
          f"| {memory / plain:.2f}x |")  # fmt: skip
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
