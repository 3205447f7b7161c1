"""Paths of update rules drawn over the contour lines of a 2-D function: a PNG and a GIF.

matplotlib is imported inside the functions so that importing cnnlab stays light.
"""

from pathlib import Path

import numpy as np

from cnnlab.optim.testfunctions import Objective

COLORS = ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple", "tab:brown")  # per rule
GRID = 300  # contour grid points per axis


def _landscape(objective: Objective):
    """A figure with the contour lines, the start and the minimum marked; (fig, ax)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.linspace(*objective.xlim, GRID)
    ys = np.linspace(*objective.ylim, GRID)
    gx, gy = np.meshgrid(xs, ys)
    values = objective.f(gx, gy)
    top = float(values.max())
    if objective.log_levels:
        levels = np.logspace(-1, np.log10(top), 25)
    else:  # evenly spaced in sqrt(f): for a quadratic, evenly spaced ellipses
        levels = np.linspace(0, np.sqrt(top), 22)[1:] ** 2

    fig, ax = plt.subplots(figsize=(8, 6) if objective.log_levels else (10, 4.5))
    ax.contour(gx, gy, values, levels=levels, colors="0.75", linewidths=0.7)
    ax.plot(*objective.start, "ko", markersize=6)
    ax.plot(*objective.minimum, "k*", markersize=14, label="minimum")
    ax.set_xlim(objective.xlim)
    ax.set_ylim(objective.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(objective.formula)
    return fig, ax


def _style(objective: Objective, rule: str, path: np.ndarray, steps: int) -> dict:
    """Line keywords for one rule: its fixed colour and a legend entry with lr and final f."""
    final = float(objective.f(*path[-1]))
    label = f"{rule} (lr={objective.lrs[rule]:g}): f={final:.2g}"
    if len(path) < steps + 1:
        label += f", diverged at step {len(path)}"
    return {
        "color": COLORS[list(objective.lrs).index(rule) % len(COLORS)],
        "linewidth": 1.4,
        "marker": "o" if steps <= 200 else None,  # dots for single steps while they stay apart
        "markersize": 2,
        "label": label,
    }


def draw_paths(objective: Objective, paths: dict[str, np.ndarray], steps: int, out: Path) -> Path:
    """Write ``out`` (PNG): every rule's path, points joined in the order they were visited, and
    a cross where it ended."""
    import matplotlib.pyplot as plt

    fig, ax = _landscape(objective)
    for rule, path in paths.items():
        style = _style(objective, rule, path, steps)
        ax.plot(path[:, 0], path[:, 1], **style)
        ax.plot(*path[-1], "X", color=style["color"], markersize=10, markeredgecolor="k")
    ax.legend(loc="upper right", fontsize=9, title=f"{steps} steps from the black dot")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def animate_paths(
    objective: Objective,
    paths: dict[str, np.ndarray],
    steps: int,
    out: Path,
    frames: int = 40,
    fps: int = 10,
) -> Path:
    """Write ``out`` (GIF): the paths growing step by step, ``frames`` pictures in all.

    The contour lines are drawn once and each frame only redraws the paths over them (blitting):
    redrawing the whole figure per frame took most of a minute for the Rosenbrock picture.
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = _landscape(objective)
    fig.set_dpi(70)
    lines, heads = {}, {}
    for rule, path in paths.items():
        style = _style(objective, rule, path, steps)
        lines[rule] = ax.plot([], [], **style)[0]
        heads[rule] = ax.plot([], [], "o", color=style["color"], markeredgecolor="k")[0]
    ax.legend(loc="upper right", fontsize=9)
    counter = ax.text(0.02, 0.95, "", transform=ax.transAxes)
    fig.tight_layout()
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)

    images = []
    for step in np.unique(np.linspace(0, steps, frames).round().astype(int)):
        fig.canvas.restore_region(background)
        for rule, path in paths.items():
            lines[rule].set_data(path[: step + 1, 0], path[: step + 1, 1])
            heads[rule].set_data(path[min(step, len(path) - 1)].reshape(2, 1))
            ax.draw_artist(lines[rule])
            ax.draw_artist(heads[rule])
        counter.set_text(f"step {step}")
        ax.draw_artist(counter)
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]))
    plt.close(fig)
    # One palette for all frames, taken from the last (where every path is drawn in full);
    # octree keeps the few saturated path colours that median cut merges into the greys.
    palette = images[-1].quantize(colors=255, method=Image.Quantize.FASTOCTREE)
    images = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    hold = [1000 // fps] * (len(images) - 1) + [2000]  # linger on the last frame
    images[0].save(out, save_all=True, append_images=images[1:], duration=hold, loop=0)
    return out
