"""The report's charts as PNG bytes: a run's curves, its per-class accuracy, a detector's
precision-recall curves.

matplotlib is imported inside the functions so that importing cnnlab stays light.
"""

import io

import numpy as np
import torch

from cnnlab.tasks.table import TASKS

# Panels of the curves figure: (title, tags drawn in it): the loss, each task's own panel (its
# row in the task table), the learning rate. A panel none of whose tags the run logged is left
# out. Per-step tags are drawn as lines, per-epoch tags as dots at their step.
PANELS = (
    ("loss", ("train/loss", "val/loss")),
    *(task.curves for task in TASKS.values()),
    ("learning rate", ("lr",)),
)
PER_STEP = {"train/loss", "lr"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def curves_png(scalars: dict[str, np.ndarray]) -> bytes | None:
    """One row of panels (loss, the task's metric, learning rate) against the training step."""
    panels = [(title, [t for t in tags if len(scalars.get(t, ()))]) for title, tags in PANELS]
    panels = [(title, tags) for title, tags in panels if tags]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, tags) in zip(axes[0], panels, strict=True):
        for i, tag in enumerate(tags):
            curve = scalars[tag]
            style = "-" if tag in PER_STEP else "o-"
            ax.plot(curve[:, 0], curve[:, 1], style, color=f"C{i}", markersize=4, label=tag)
        ax.set(title=title, xlabel="step")
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def per_class_png(recall: torch.Tensor, class_names: list[str]) -> bytes:
    """Bars of each class's test recall (its accuracy on its own images), their mean dashed."""
    plt = _pyplot()
    values = recall.nan_to_num(0.0).numpy()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(values) + 1.5), 3.2))
    ax.bar(range(len(values)), values, color="C0")
    ax.axhline(float(np.nanmean(recall.numpy())), color="C3", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(values)), class_names, rotation=90 if len(values) > 12 else 0)
    ax.set(ylim=(0, 1.02), ylabel="test recall", title="recall per class (dashed: mean)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


def pr_curves_png(curves: dict[float, dict[str, tuple[np.ndarray, float]]]) -> bytes:
    """One panel per IoU threshold: each class's interpolated precision against recall (COCO's
    101 recall points), its AP in the legend. ``curves``: IoU -> class -> (precision, AP)."""
    plt = _pyplot()
    recall = np.linspace(0, 1, 101)
    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.8), squeeze=False)
    for ax, (iou, per_class) in zip(axes[0], curves.items(), strict=True):
        for i, (name, (precision, ap)) in enumerate(per_class.items()):
            ax.plot(recall, precision, color=f"C{i % 10}", label=f"{name} (AP {ap:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
        ax.set_title(f"IoU {iou:.2f}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return figure_png(fig)
