"""Pictures for docs/segmentation.md: atrous filters; the lineage before and after the CRF.

    python scripts/segmentation_pictures.py --out docs/images [--run NAME=CKPT ...] [--index K]

Always writes segmentation_dilation.png (what a 3x3 filter covers at rates 1, 2 and 4); given
runs, segmentation_lineage.png: a row per run with the picture as the network sees it (the test
set's picture at data.image_size), the true mask, the prediction, the prediction after the CRF
(default CRFSettings) and the pixels the CRF changed, labelled with that picture's mIoU before ->
after the CRF (mean over the classes in truth or prediction). Without --index the picture is the
first test picture holding all three shapes. The lineage (cnnlab-train -m
experiment=segmentation_lineage lineage=fcn32s,...,fcn8s_vgg16 hydra.sweep.dir=L: its arms in
folders 0-6 in the sweep's order; each folder's .hydra/overrides.yaml names its arm) is drawn with

    C=checkpoints/last.ckpt
    python scripts/segmentation_pictures.py --run FCN-32s=$L/0/$C --run FCN-8s=$L/1/$C \\
        --run "DeepLab v1=$L/2/$C" --run "DeepLab v2=$L/3/$C" --run "DeepLab v3+=$L/4/$C" \\
        --run "FCN-32s VGG=$L/5/$C" --run "FCN-8s VGG=$L/6/$C"
"""

import argparse
from pathlib import Path

import torch
from matplotlib.figure import Figure  # no pyplot: a Figure saves a PNG with Agg by itself
from matplotlib.patches import Patch, Rectangle

from cnnlab.factory.restore import restore
from cnnlab.inference.segmentation import crf_change, predict_scores
from cnnlab.models.crf import CRFSettings, dense_crf
from cnnlab.viz.images import unnormalize
from cnnlab.viz.masks import colorize, palette_colors

RATES, GRID = (1, 2, 4), 11  # an 11 x 11 grid holds the widest field, 4 * (3 - 1) + 1 = 9
NO_STAMP = {"Software": None}  # no matplotlib version in the PNG: the same bytes every run
COLUMNS = ("picture", "true mask", "prediction", "after the CRF", "changed by the CRF")


def dilation_panel(ax, rate: int, size: int = 3) -> None:
    """One rate: the grid's pixels, the ``size`` x ``size`` taps filled, their field outlined."""
    span, centre = rate * (size - 1) + 1, GRID // 2
    ax.set_xlim(-0.5, GRID - 0.5), ax.set_ylim(GRID - 0.5, -0.5)
    for i in range(GRID + 1):  # the pixels' edges
        ax.plot([i - 0.5] * 2, [-0.5, GRID - 0.5], color="0.8", lw=0.8)
        ax.plot([-0.5, GRID - 0.5], [i - 0.5] * 2, color="0.8", lw=0.8)
    start = centre - span // 2
    ax.add_patch(Rectangle((start - 0.5, start - 0.5), span, span, fc="#fde9c8", ec="none"))
    offsets = [rate * (k - size // 2) for k in range(size)]
    for dy in offsets:
        for dx in offsets:
            tap = Rectangle((centre + dx - 0.45, centre + dy - 0.45), 0.9, 0.9, fc="#1f5fa8")
            ax.add_patch(tap)
    ax.add_patch(Rectangle((start - 0.5, start - 0.5), span, span, fc="none", ec="#d9480f", lw=2.5))
    ax.set_title(f"rate {rate}: {size * size} weights, {span}x{span} field", fontsize=13)
    ax.set_aspect("equal"), ax.axis("off")


def dilation_figure(path: Path) -> None:
    fig = Figure(figsize=(9, 3.3), dpi=100, layout="constrained")  # 900 px wide
    axes = fig.subplots(1, len(RATES))
    for ax, rate in zip(axes, RATES, strict=True):
        dilation_panel(ax, rate)
    note = "blue: the 3x3 filter's taps; orange: the field they span, rate x (3 - 1) + 1 pixels"
    fig.supxlabel(note, fontsize=10)
    fig.savefig(path, metadata=NO_STAMP)
    print(f"wrote {path}")


def first_with_all_shapes(test_set) -> int:
    """The first test picture whose true mask holds classes 1, 2 and 3."""
    for k in range(len(test_set)):
        if {1, 2, 3} <= set(test_set[k][1].unique().tolist()):
            return k
    raise SystemExit("no test picture holds all three shapes: pass --index")


def mean_iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """The mean IoU over the classes present in the truth or the prediction."""
    classes = torch.cat([pred.unique(), truth.unique()]).unique()
    ious = [
        ((pred == c) & (truth == c)).sum() / ((pred == c) | (truth == c)).sum() for c in classes
    ]
    return float(torch.stack(ious).mean())


def run_row(ckpt: str, index: int | None) -> tuple[dict, int]:
    """Restore a run; its test picture ``index`` (None: the first with all shapes) at the
    network's size, the true mask, the prediction before and after the CRF."""
    run = restore(ckpt)
    run.datamodule.setup("test")
    test_set, net = run.datamodule.test_set, run.module.net.eval()
    index = first_with_all_shapes(test_set) if index is None else index
    x, truth = test_set[index]  # normalised (3, S, S) at data.image_size, (S, S) class ids
    picture = unnormalize(x[None])[0]  # uint8, the pixels the network sees
    scores = predict_scores(net, picture, run.datamodule.transforms(train=False))
    probs = scores.float().softmax(dim=0)
    pred, after = probs.argmax(0).cpu(), dense_crf(picture, probs, CRFSettings()).argmax(0).cpu()
    classes = run.datamodule.class_names
    return dict(picture=picture, truth=truth, pred=pred, after=after, classes=classes), index


def lineage_figure(rows: dict[str, dict], path: Path) -> None:
    """A row per run: picture, truth, prediction, after the CRF, the pixels it changed; under
    them the class colours (the first run's class names)."""
    fig = Figure(figsize=(10, 1.8 * len(rows) + 0.5), dpi=100, layout="constrained")
    axes = fig.subplots(len(rows), len(COLUMNS), squeeze=False)
    for axes_row, (name, r) in zip(axes, rows.items(), strict=True):
        changed = r["after"] != r["pred"]
        tiles = [
            r["picture"],
            colorize(r["truth"]),
            colorize(r["pred"]),
            colorize(r["after"]),
            crf_change(r["picture"], r["after"], changed),
        ]
        for ax, tile in zip(axes_row, tiles, strict=True):
            ax.imshow(tile.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        before, after = mean_iou(r["pred"], r["truth"]), mean_iou(r["after"], r["truth"])
        text = f"{name}\nmIoU {before:.3f} -> {after:.3f}\n{int(changed.sum())} px changed"
        axes_row[0].set_ylabel(text, fontsize=10, rotation=0, ha="right", va="center")
        print(f"{name}: mIoU {before:.4f} -> {after:.4f}, {int(changed.sum())} pixels changed")
    for ax, title in zip(axes[0], COLUMNS, strict=True):
        ax.set_title(title, fontsize=11)
    names = next(iter(rows.values()))["classes"]
    colours = palette_colors()[: len(names)].float() / 255
    legend = [Patch(fc=c.tolist(), ec="0.5", label=n) for c, n in zip(colours, names, strict=True)]
    fig.legend(handles=legend, loc="outside lower center", ncol=len(names), frameon=False)
    fig.savefig(path, metadata=NO_STAMP)
    print(f"wrote {path}")


def named_run(text: str) -> tuple[str, str]:
    name, sep, ckpt = text.partition("=")
    if not sep or not name or not ckpt:
        raise argparse.ArgumentTypeError(f"--run takes NAME=CKPT; got {text!r}")
    return name, ckpt


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument(
        "--run",
        type=named_run,
        action="append",
        default=[],
        metavar="NAME=CKPT",
        help="a row of the lineage picture (repeatable)",
    )
    parser.add_argument("--index", type=int, help="test picture (default: first with 3 shapes)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dilation_figure(args.out / "segmentation_dilation.png")
    if not args.run:
        print("no --run: segmentation_lineage.png not written")
        return
    rows, index = {}, args.index
    for name, ckpt in args.run:
        rows[name], index = run_row(ckpt, index)  # the first run's choice holds for the others
    print(f"test picture {index}")
    lineage_figure(rows, args.out / "segmentation_lineage.png")


if __name__ == "__main__":
    main()
