"""comparison_seeds.png: each group's mean with its 95% interval as error bars, its seeds as dots.

A figure of its own beside comparison.png (whose two panels are per-run curves): one line per
group, the first at the top, so that long override labels read along the y axis. The best group
is drawn in its own colour; the runs' own values are grey dots, spread a little up and down so
that equal values (accuracies on a small test split often are) stay visible. matplotlib is
imported inside the function to keep imports light.
"""

import math
from pathlib import Path

import numpy as np

from cnnlab.compare.seed_report import SeedRow


def plot_seed_means(rows: list[SeedRow], metric: str, out: Path, key: str = "seed") -> Path:
    """Write ``out`` (PNG); a group of one run gets its point without a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.5 * max(1, len(rows))))
    for y, row in enumerate(rows):
        s = row.summary
        color = "C3" if row.best else "C0"
        spread = np.linspace(-0.18, 0.18, s.n) if s.n > 1 else np.zeros(s.n)
        ax.scatter(row.group.values, y + spread, s=14, color="0.55", zorder=2)
        if not s.n:
            continue
        bar = None if math.isnan(s.low) else [[s.mean - s.low], [s.high - s.mean]]
        ax.errorbar(
            s.mean, y, xerr=bar, fmt="o", color=color, capsize=5, markersize=7, zorder=3,
            elinewidth=2.2 if row.best else 1.4,
        )  # fmt: skip
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r.group.label + " (best)" * r.best for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first group on top, as in the table
    ax.set(xlabel=metric, title=f"{metric}: mean and 95% interval over {key}s (dots: runs)")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
