"""Non-maximum suppression, written out: of boxes that overlap, keep the best-scored one.

Greedy, as detectors since R-CNN do it: take the highest-scoring box left, keep it, and drop
every remaining box of the same class whose IoU with it is above the threshold; repeat until no
box is left. ``torchvision.ops.batched_nms`` does the same in C++ (tests/models compare them);
this one is here to be read, and it is quick enough for the few hundred boxes a YOLO grid gives.
"""

import torch
from torchvision.ops import box_iou


def nms(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Indices of the kept boxes, best score first. Boxes (N, 4) x1, y1, x2, y2; a box is only
    suppressed by a better box of its own label whose IoU with it exceeds ``iou_threshold``."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True)
    boxes, labels = boxes[order], labels[order]
    # suppresses[i, j]: box i, if kept, removes box j (same label, overlapping enough)
    suppresses = (box_iou(boxes, boxes) > iou_threshold) & (labels[:, None] == labels[None, :])
    suppresses = suppresses.cpu()
    removed = torch.zeros(len(order), dtype=torch.bool)
    kept = []
    for i in range(len(order)):
        if removed[i]:
            continue
        kept.append(i)
        removed |= suppresses[i]
    return order[torch.tensor(kept, device=order.device)]
