"""Pictures of a classifier, shared by TensorBoard (callbacks/tensorboard_images.py) and the run
report: the confusion matrix, the first convolution's filters, captioned image tiles, Grad-CAM
maps over the images.

Images are uint8 tensors (3, H, W), what ``SummaryWriter.add_image`` and PNG writers take.
They are drawn with torchvision's make_grid and PIL, fast enough for every epoch.
"""

import math
from collections.abc import Sequence

import torch
from torchvision.utils import make_grid

from cnnlab.viz.images import caption, heat_tile, scaled_grid

GREEN, RED, WHITE = (40, 160, 60), (220, 40, 40), (255, 255, 255)
MIN_TILE = 96  # pixels: a 32x32 digit is drawn 3x larger so that its caption fits under it


def confusion_matrix_image(
    matrix, class_names: Sequence[str], title: str = "", counted: str = "images"
) -> torch.Tensor:
    """``matrix`` (K, K), rows the true classes and columns the predictions, drawn as a uint8
    image (3, H, W): cells shaded by the share of their row (so rare classes show as clearly as
    frequent ones), with their counts up to 20 classes, and the accuracy in the title, over
    the matrix's total of ``counted`` (a detection matrix counts objects and false detections).

    Drawn with PIL in a few milliseconds (a matplotlib figure took about 0.3 s, as long as a
    LeNet epoch on the digits), so TensorBoard can have one every epoch.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    counts = np.asarray(matrix, dtype=np.int64)
    k = counts.shape[0]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [str(n) for n in class_names]
    text_w = 6  # pixels a character of Pillow's default font takes
    label_chars = min(max(map(len, names)), 12) if k <= 30 else 0
    digits = len(str(int(counts.max()))) if k <= 20 else 0
    fit_label = (label_chars * text_w + 4) if k <= 10 else 0  # column labels across
    cell = max(26 if k <= 20 else 12, digits * text_w + 6, fit_label)
    left = label_chars * text_w + 22  # "true" written down the side, then the row labels
    top = 34 + (12 if k <= 30 else 0)  # title, "predicted", the column labels
    side = cell * k
    width = max(left + side + 8, 16 + text_w * (len(title) + 30 + len(counted)))
    canvas = Image.new("RGB", (width, top + side + 8), WHITE)
    draw = ImageDraw.Draw(canvas)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    heading = f"{title}  " * bool(title) + f"accuracy {accuracy:.3f} ({counts.sum()} {counted})"
    draw.text((8, 4), heading, fill=(0, 0, 0))
    draw.text((left + side // 2 - 4 * text_w, 18), "predicted", fill=(80, 80, 80))
    for n, ch in enumerate("true"):
        draw.text((4, top + side // 2 - 24 + 12 * n), ch, fill=(80, 80, 80))
    light, dark = np.array((247, 251, 255)), np.array((8, 48, 107))  # white to deep blue
    for i in range(k):
        if label_chars:
            draw.text((16, top + i * cell + cell // 2 - 5), names[i][:label_chars], fill=(0, 0, 0))
            draw.text((left + i * cell + 2, top - 12), names[i][: (cell - 2) // text_w],
                      fill=(0, 0, 0))  # fmt: skip
        for j in range(k):
            colour = tuple(int(c) for c in (light + (dark - light) * share[i, j]).round())
            x0, y0 = left + j * cell, top + i * cell
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=colour)
            if digits and counts[i, j]:
                ink = WHITE if share[i, j] > 0.5 else (0, 0, 0)
                label = str(counts[i, j])
                draw.text((x0 + (cell - text_w * len(label)) // 2, y0 + cell // 2 - 5), label,
                          fill=ink)  # fmt: skip
    return torch.from_numpy(np.array(canvas)).permute(2, 0, 1).contiguous()


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


def cam_grid(images: torch.Tensor, heats: torch.Tensor, captions: Sequence[str]) -> torch.Tensor:
    """uint8 images (B, 3, H, W) with their Grad-CAM maps (B, H, W) in [0, 1] drawn over them
    (``heat_tile``: enlarged to at least 96 pixels a side) and a caption at the top of each
    (the class explained) -> one uint8 grid (3, H', W')."""
    import numpy as np
    from PIL import Image

    tiles = []
    for image, heat, text in zip(images, heats, captions, strict=True):
        tile = heat_tile(image, heat).permute(1, 2, 0).numpy()
        drawn = caption(Image.fromarray(np.ascontiguousarray(tile)), text)
        tiles.append(torch.from_numpy(np.array(drawn)).permute(2, 0, 1))
    return scaled_grid(torch.stack(tiles))
