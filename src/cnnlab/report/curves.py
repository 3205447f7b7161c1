"""comparison.png: the training loss per step and a validation metric per epoch, run by run.

matplotlib is imported inside the function so that importing cnnlab stays light.
"""

from pathlib import Path

import numpy as np

from cnnlab.report.scalars import per_epoch

# The epoch-level metric drawn on the right: the first of these that some run logged.
VAL_METRICS = ("val/acc", "val/miou", "val/map", "val/loss")


def plot_comparison(
    labels: list[str], scalars: list[dict[str, np.ndarray]], out: Path, title: str = ""
) -> Path:
    """Write ``out`` (PNG): two panels, one line per run, in the same colour on both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

    val_tag = next((t for t in VAL_METRICS if any(t in s for s in scalars)), VAL_METRICS[0])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, (label, run) in enumerate(zip(labels, scalars, strict=True)):
        color = f"C{i % 10}"
        loss = run.get("train/loss", np.empty((0, 2)))
        left.plot(loss[:, 0], loss[:, 1], color=color, linewidth=1.2, label=label)
        val = per_epoch(run, val_tag)
        right.plot(val[:, 0], val[:, 1], "o-", color=color, markersize=3, label=label)

    left.set(xlabel="step", ylabel="train/loss", title="training loss per step", yscale="log")
    right.set(xlabel="epoch", ylabel=val_tag, title=f"{val_tag} after each epoch")
    left.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.1 0.2 0.5 1 2 ...
    left.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    left.yaxis.set_minor_formatter(NullFormatter())
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax, tag in ((left, "train/loss"), (right, val_tag)):
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
