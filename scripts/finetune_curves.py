"""Test accuracy after every epoch for the three fine-tuning strategies and from scratch.

The study of experiment=finetune_digits, stretched to 30 epochs: digits 5-9 from 10 training
images per class, starting from the digits 0-4 network of experiment=finetune_digits_pretrain
(run that first). The experiment keeps the learning rate constant, so the weights after epoch E
of a 30-epoch run are the weights an E-epoch run ends with; the test split is scored after each
epoch. Writes CSV and PNG (mean and range over the seeds).

    python scripts/finetune_curves.py --epochs 30 --seeds 0 1 2 --out docs/images/finetune_digits
"""

import argparse
import csv
import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra import compose, initialize_config_dir

from cnnlab.factory import build
from cnnlab.factory.configs import config_dir

ARMS = ("feature_extract", "full", "gradual", "scratch")


class TestEachEpoch(pl.Callback):
    """Top-1 accuracy of the current weights on the test split, after each training epoch."""

    def __init__(self) -> None:
        self.acc: list[float] = []

    @torch.no_grad()
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        was_training = pl_module.training
        pl_module.eval()
        right = total = 0
        for x, y in trainer.datamodule.test_dataloader():
            right += (pl_module(x.to(pl_module.device)).argmax(1).cpu() == y).sum().item()
            total += len(y)
        self.acc.append(right / total)
        pl_module.train(was_training)


def curve(arm: str, seed: int, epochs: int, run_dir: Path) -> list[float]:
    overrides = [
        "experiment=finetune_digits",
        f"finetune={arm}",
        f"seed={seed}",
        f"trainer.max_epochs={epochs}",
        "logger=none",
        "callbacks=none",
        "+trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "+trainer.num_sanity_val_steps=0",
        "+trainer.limit_val_batches=0",
        f"paths.output_dir={run_dir}",
    ]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    task, datamodule = build.build_datamodule(cfg.data)
    module = build.build_module(cfg, task, datamodule)
    probe = TestEachEpoch()
    callbacks = build.build_callbacks(None, finetune_cfg=cfg.get("finetune")) + [probe]
    trainer = build.build_trainer(cfg.trainer, callbacks, [])
    trainer.fit(module, datamodule=datamodule)
    return probe.acc


def plot(curves: dict[str, list[list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for arm, runs in curves.items():
        t = torch.tensor(runs)
        epochs = range(1, t.shape[1] + 1)
        ax.plot(epochs, t.mean(0), label=arm, marker="o", markersize=3)
        ax.fill_between(epochs, t.min(0).values, t.max(0).values, alpha=0.15)
    ax.set_xlabel("epochs of training on 10 images per class (digits 5-9)")
    ax.set_ylabel("test/acc (5-9 test split)")
    ax.set_title("LeNet-5 pretrained on digits 0-4, fine-tuned, vs. from scratch")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("docs/images/finetune_digits"))
    parser.add_argument("--work", type=Path, default=Path("outputs/finetune_curves"))
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    curves = {arm: [] for arm in ARMS}
    for arm in ARMS:
        for seed in args.seeds:
            acc = curve(arm, seed, args.epochs, args.work / f"{arm}-{seed}")
            curves[arm].append(acc)
            print(f"{arm:16s} seed {seed}: " + " ".join(f"{a:.3f}" for a in acc), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["strategy", "seed", *[f"epoch{e}" for e in range(1, args.epochs + 1)]])
        for arm, runs in curves.items():
            for seed, acc in zip(args.seeds, runs, strict=True):
                writer.writerow([arm, seed, *[f"{a:.4f}" for a in acc]])
    plot(curves, args.out.with_suffix(".png"))
    print("mean test/acc by epoch:")
    for arm, runs in curves.items():
        mean = torch.tensor(runs).mean(0)
        print(f"{arm:16s} " + " ".join(f"{e + 1}:{m:.3f}" for e, m in enumerate(mean.tolist())))
    print(f"wrote {args.out.with_suffix('.csv')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
