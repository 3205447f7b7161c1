"""comparison.png: the training loss per step and a validation metric per epoch, run by run.

The best run (by its task's monitored metric) is drawn thicker, on top, with "(best)" in the
legend and a star at the epoch where it peaked: the epoch its best checkpoint comes from.

matplotlib is imported inside the function so that importing cnnlab stays light.
"""

from pathlib import Path

import numpy as np

from cnnlab.report.scalars import per_epoch
from cnnlab.tasks.table import TASKS

# The epoch-level metric drawn on the right: the first of these that some run logged (each
# task's monitored metric, in the task table's order, then the validation loss).
VAL_METRICS = (*(task.monitor for task in TASKS.values()), "val/loss")


def plot_comparison(
    labels: list[str],
    scalars: list[dict[str, np.ndarray]],
    out: Path,
    title: str = "",
    *,
    val_tags: list[str | None] | None = None,
    best: int | None = None,
) -> Path:
    """Write ``out`` (PNG): two panels, one line per run, in the same colour on both.

    ``val_tags`` names each run's epoch-level metric (a detection run's val/map beside a
    classification run's val/acc); None for a run takes the shared default. ``best`` is the index
    of the run to mark.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

    shared = next((t for t in VAL_METRICS if any(t in s for s in scalars)), VAL_METRICS[0])
    tags = [t or shared for t in (val_tags or [None] * len(scalars))]
    mixed = len(set(tags)) > 1
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, (label, run, tag) in enumerate(zip(labels, scalars, tags, strict=True)):
        color = f"C{i % 10}"
        marked = i == best
        width, z = (2.6, 3) if marked else (1.2, 2)
        name = f"{label} [{tag}]" if mixed else label
        name += " (best)" if marked else ""
        loss = run.get("train/loss", np.empty((0, 2)))
        left.plot(loss[:, 0], loss[:, 1], color=color, linewidth=width, zorder=z, label=name)
        val = epoch_curve(run, tag)
        right.plot(
            val[:, 0],
            val[:, 1],
            "o-",
            color=color,
            linewidth=width,
            zorder=z,
            markersize=4 if marked else 3,
            label=name,
        )
        if marked and not tag.endswith("loss") and np.isfinite(val[:, 1]).any():
            peak = int(np.nanargmax(val[:, 1]))
            right.plot(
                val[peak, 0],
                val[peak, 1],
                "*",
                color=color,
                markersize=18,
                zorder=4,
                markeredgecolor="black",
                markeredgewidth=0.8,
            )
            right.annotate(
                f"best {val[peak, 1]:.4f}",
                (val[peak, 0], val[peak, 1]),
                textcoords="offset points",
                xytext=(0, -16),
                ha="center",
                fontsize=8,
            )

    right_name = "validation metric" if mixed else tags[0] if tags else shared
    left.set(xlabel="step", ylabel="train/loss", title="training loss per step", yscale="log")
    right.set(xlabel="epoch", ylabel=right_name, title=f"{right_name} after each epoch")
    left.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.1 0.2 0.5 1 2 ...
    left.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    left.yaxis.set_minor_formatter(NullFormatter())
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax, tag in ((left, "train/loss"), (right, right_name)):
        ax.grid(True, alpha=0.3)
        if ax.lines and any(len(line.get_xdata()) for line in ax.lines):
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {tag} in the event files", ha="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def run_val_tag(scalars: dict[str, np.ndarray], monitored: str) -> str | None:
    """The epoch-level metric to draw for one run: its task's monitored metric when it logged
    it, else the first of VAL_METRICS it has, else None (the shared default)."""
    if monitored in scalars:
        return monitored
    return next((t for t in VAL_METRICS if t in scalars), None)


def epoch_curve(scalars: dict[str, np.ndarray], tag: str) -> np.ndarray:
    """per_epoch without what was logged once testing began: the hparams summary writes the final
    val/* values once more beside the test results, one step after the last epoch's point."""
    curve = scalars.get(tag)
    tested = [c[:, 0].min() for t, c in scalars.items() if t.startswith("test/") and len(c)]
    if curve is not None and len(curve) and tested and not tag.startswith("test/"):
        kept = curve[curve[:, 0] < min(tested)]
        if len(kept):
            scalars = {**scalars, tag: kept}
    return per_epoch(scalars, tag)
