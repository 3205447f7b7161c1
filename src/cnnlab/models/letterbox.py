"""Letterboxing: a picture of any shape fitted into a square without changing its aspect.

The picture is scaled so that its longer side is ``size`` pixels, then centred on a
``size`` x ``size`` canvas; the two bands left over (top and bottom, or left and right) are
filled with one grey. A box moves with the picture: scaled by the same factor, then shifted by
the band's width. ``unletterbox_boxes`` is the inverse, which maps what a detector found on the
canvas back onto the original picture.
"""

from dataclasses import dataclass

import torch
from torch.nn import functional as F

FILL = 0.5  # the bands' grey, in 0..1 (the mean of any picture's range, so it looks like nothing)


@dataclass(frozen=True)
class Placement:
    """Where a picture of ``height`` x ``width`` went on the canvas: scaled by ``scale``, its
    top-left corner at (``left``, ``top``)."""

    height: int
    width: int
    scale: float
    left: int
    top: int


def placement(height: int, width: int, size: int) -> Placement:
    """How a ``height`` x ``width`` picture is fitted into a ``size`` square."""
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return Placement(height, width, scale, (size - new_w) // 2, (size - new_h) // 2)


def letterbox(image: torch.Tensor, size: int, fill: float = FILL) -> tuple[torch.Tensor, Placement]:
    """``image`` (C, H, W), floats, on a ``size`` x ``size`` canvas, and where it was put."""
    height, width = image.shape[-2:]
    place = placement(height, width, size)
    new_h, new_w = max(1, round(height * place.scale)), max(1, round(width * place.scale))
    if (new_h, new_w) != (height, width):
        image = F.interpolate(
            image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
        )[0]
    canvas = image.new_full((image.shape[0], size, size), fill)
    canvas[:, place.top : place.top + new_h, place.left : place.left + new_w] = image
    return canvas, place


def letterbox_boxes(boxes: torch.Tensor, place: Placement) -> torch.Tensor:
    """Boxes (N, 4) x1, y1, x2, y2 in the picture's pixels -> in the canvas's pixels."""
    shift = boxes.new_tensor([place.left, place.top, place.left, place.top])
    return boxes * place.scale + shift


def unletterbox_boxes(boxes: torch.Tensor, place: Placement) -> torch.Tensor:
    """Boxes (N, 4) in the canvas's pixels -> in the picture's, clipped to the picture."""
    shift = boxes.new_tensor([place.left, place.top, place.left, place.top])
    out = (boxes - shift) / place.scale
    limit = boxes.new_tensor([place.width, place.height, place.width, place.height])
    return torch.minimum(out.clamp(min=0), limit)
