"""Pictures of a classifier, shared by TensorBoard (callbacks/tensorboard_images.py) and the run
report: the confusion matrix, the first convolution's filters, captioned image tiles.

Images are uint8 tensors (3, H, W), what ``SummaryWriter.add_image`` and PNG writers take.
matplotlib is imported inside the functions (and without pyplot, so no GUI backend is chosen
and no global figure list grows) to keep ``import cnnlab`` light.
"""

import math
from collections.abc import Sequence

import torch
from torchvision.utils import make_grid

GREEN, RED, WHITE = (40, 160, 60), (220, 40, 40), (255, 255, 255)
MIN_TILE = 96  # pixels: a 32x32 digit is drawn 3x larger so that its caption fits under it


def confusion_matrix_figure(matrix, class_names: Sequence[str], title: str = ""):
    """A matplotlib Figure of ``matrix`` (K, K): rows are true classes, columns predictions.

    Cells are coloured by the share of their row (so rare classes show as clearly as frequent
    ones) and carry their counts when there are at most 20 classes.
    """
    import numpy as np
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.int64)
    k = counts.shape[0]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(max(3.5, 0.45 * k + 1.5), 12.0)  # inches: about 0.45 per class, bounded
    fig = Figure(figsize=(side + 0.8, side), dpi=90, layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(shown, ax=ax, fraction=0.046, label="share of the true class")
    names = [str(n) for n in class_names]
    if k <= 30:  # more tick labels than this overlap
        ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 3 else 0)
        ax.set_yticks(range(k), names)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    color = "white" if share[i, j] > 0.5 else "black"
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{title}  " * bool(title) + f"accuracy {accuracy:.3f} ({counts.sum()} images)")
    return fig


def figure_to_image(fig) -> torch.Tensor:
    """Render a matplotlib Figure (Agg) to a uint8 tensor (3, H, W)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4)
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1)


def filter_grid(weight: torch.Tensor, min_size: int = 64) -> torch.Tensor:
    """The filters of a convolution, weight (out, in, kh, kw), as one uint8 image (3, H, W).

    Each filter is stretched to its own min..max (CS231n's convention: the pattern matters,
    not its scale) and enlarged by a whole factor to at least ``min_size`` pixels. Three input
    channels are drawn in colour; any other number is averaged to grey.
    """
    w = weight.detach().float().cpu()
    if w.shape[1] != 3:
        w = w.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    low = w.amin(dim=(1, 2, 3), keepdim=True)
    high = w.amax(dim=(1, 2, 3), keepdim=True)
    w = (w - low) / (high - low).clamp_min(1e-12)
    scale = max(1, math.ceil(min_size / max(w.shape[-2:])))
    w = w.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    grid = make_grid(w, nrow=math.ceil(math.sqrt(len(w))), padding=2, pad_value=1.0)
    return (grid * 255).round().to(torch.uint8)


def to_uint8(images: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None):
    """Normalised batch images (B, C, H, W) -> uint8 RGB (B, 3, H, W) on the CPU.

    With ``mean``/``std`` (the datamodule's) the normalisation is undone; without them each
    image is stretched to its own min..max.
    """
    x = images.detach().float().cpu()
    if mean is not None and std is not None:
        x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    else:
        low = x.amin(dim=(1, 2, 3), keepdim=True)
        x = (x - low) / (x.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def captioned_grid(
    images: torch.Tensor,
    true: Sequence[str],
    predicted: Sequence[str],
    columns: int | None = None,
) -> torch.Tensor:
    """uint8 images (B, 3, H, W) with "true ..." and "pred ..." written under each one (the
    prediction green when right, red when wrong) -> one uint8 grid (3, H', W').

    Drawn on one PIL canvas: small images are enlarged by a whole factor to about ``MIN_TILE``
    pixels so that the caption fits under them.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    pad, line = 2, 12  # pixels: between tiles; per caption line of Pillow's default font
    scale = max(1, math.ceil(MIN_TILE / max(images.shape[-2:])))
    h, w = images.shape[-2] * scale, images.shape[-1] * scale
    cell_h = h + 2 * line + 4
    cols = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    canvas = Image.new("RGB", (cols * (w + pad) + pad, rows * (cell_h + pad) + pad), WHITE)
    draw = ImageDraw.Draw(canvas)
    chars = max(4, w // 6)  # the default font is about 6 pixels a character
    pixels = images.permute(0, 2, 3, 1).numpy()  # (B, H, W, 3)
    for i, (t, p) in enumerate(zip(true, predicted, strict=True)):
        x0, y0 = pad + (i % cols) * (w + pad), pad + (i // cols) * (cell_h + pad)
        tile = Image.fromarray(np.ascontiguousarray(pixels[i])).resize((w, h), Image.NEAREST)
        canvas.paste(tile, (x0, y0))
        draw.rectangle((x0, y0 + h, x0 + w - 1, y0 + cell_h - 1), fill=(0, 0, 0))
        draw.text((x0 + 2, y0 + h + 1), f"true {t}"[:chars], fill=WHITE)
        draw.text((x0 + 2, y0 + h + line + 2), f"pred {p}"[:chars], fill=GREEN if t == p else RED)
    return torch.from_numpy(np.array(canvas)).permute(2, 0, 1).contiguous()
