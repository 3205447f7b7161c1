"""Detections drawn on images: boxes in a colour, captioned with the class name (and score)."""

from collections.abc import Sequence

import torch
from torchvision.utils import draw_bounding_boxes

TRUE_COLOR, PRED_COLOR = "lime", "red"


def label_text(label: int, class_names: Sequence[str] | None) -> str:
    """The name of a detection label 1..K (0 is the background), or the number itself."""
    if class_names and 1 <= label <= len(class_names):
        return class_names[label - 1]
    return str(label)


def draw_detections(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    color: str = PRED_COLOR,
) -> torch.Tensor:
    """``image`` (C, H, W) float in [0, 1] or uint8 -> uint8 RGB (3, H, W) with the boxes drawn,
    each captioned with its class name (and score, when given)."""
    if image.dtype != torch.uint8:
        image = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8)
    image = image.cpu()
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    if len(boxes) == 0:
        return image.clone()
    captions = [label_text(int(lab), class_names) for lab in labels]
    if scores is not None:
        captions = [f"{c} {float(s):.2f}" for c, s in zip(captions, scores, strict=True)]
    return draw_bounding_boxes(
        image, boxes.detach().cpu().float(), labels=captions, colors=color, width=2
    )
