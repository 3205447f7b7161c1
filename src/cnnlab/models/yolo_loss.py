"""YOLO v1's targets and loss (Redmon et al., CVPR 2016, section 2.2), in our own code.

The picture is an S x S grid. An object belongs to the cell that holds its centre; of that
cell's B predicted boxes, the one whose box overlaps the object most (highest IoU, among those
not yet given to another object of the cell) is *responsible* for it. A cell takes at most B
objects, the largest first; an object that finds no free box is not learnt (``dropped``).

Each box predicts (x, y, sqrt w, sqrt h, confidence): x, y the centre's place inside its cell
(0..1), w, h the size as a share of the picture. Each cell predicts C class probabilities.
The loss sums squares, as the paper does:

- ``loss_coord`` = lambda_coord * sum over responsible boxes of (x - x^)^2 + (y - y^)^2
  + (sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2; the square roots make an error of a few
  pixels cost more on a small box than on a large one.
- ``loss_obj`` = sum over responsible boxes of (C - IoU)^2: the confidence should say how well
  the box fits its object.
- ``loss_noobj`` = lambda_noobj * sum over every other box of C^2: most boxes see no object,
  and lambda_noobj (0.5) keeps their many zeros from drowning the few objects.
- ``loss_class`` = sum over cells holding an object of sum over classes (p - p^)^2, the target
  the share of each class among the cell's objects (one-hot when it holds one).

Each part is summed over a picture and averaged over the batch.
"""

from dataclasses import dataclass

import torch
from torchvision.ops import box_iou


@dataclass
class GridPrediction:
    """A batch of grid outputs, already squashed into range (sigmoid, softmax)."""

    boxes: torch.Tensor  # (N, S, S, B, 4): x, y (in the cell), sqrt w, sqrt h (of the picture)
    confidence: torch.Tensor  # (N, S, S, B)
    probs: torch.Tensor  # (N, S, S, C), each cell's class probabilities (sum to 1)

    def corners(self) -> torch.Tensor:
        """The boxes as x1, y1, x2, y2 in 0..1 of the picture: (N, S, S, B, 4)."""
        s = self.boxes.shape[1]
        steps = torch.arange(s, device=self.boxes.device, dtype=self.boxes.dtype)
        cx = (self.boxes[..., 0] + steps[None, None, :, None]) / s  # column index runs along W
        cy = (self.boxes[..., 1] + steps[None, :, None, None]) / s
        w, h = self.boxes[..., 2] ** 2, self.boxes[..., 3] ** 2
        return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


@dataclass
class GridTarget:
    """What one picture's grid should predict (see the module's docstring)."""

    responsible: torch.Tensor  # bool (S, S, B)
    boxes: torch.Tensor  # (S, S, B, 4) x, y, sqrt w, sqrt h; meaningful where responsible
    confidence: torch.Tensor  # (S, S, B): the IoU of the responsible box with its object
    has_object: torch.Tensor  # bool (S, S)
    probs: torch.Tensor  # (S, S, C)
    dropped: int  # objects whose cell had no free box left


def assign(
    boxes: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor, num_classes: int
) -> GridTarget:
    """Targets for one picture. ``boxes`` (M, 4) x1, y1, x2, y2 in 0..1 of the picture,
    ``labels`` (M,) in 1..C, ``predicted`` (S, S, B, 4) the picture's predicted corners (0..1)."""
    s, _, b, _ = predicted.shape
    device, dtype = predicted.device, predicted.dtype
    responsible = torch.zeros(s, s, b, dtype=torch.bool, device=device)
    target_boxes = torch.zeros(s, s, b, 4, dtype=dtype, device=device)
    confidence = torch.zeros(s, s, b, dtype=dtype, device=device)
    counts = torch.zeros(s, s, num_classes, dtype=dtype, device=device)
    boxes = boxes.to(device=device, dtype=dtype)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w, h = (boxes[:, 2] - boxes[:, 0]).clamp(min=0), (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    cols = (cx * s).floor().long().clamp(0, s - 1).tolist()
    rows = (cy * s).floor().long().clamp(0, s - 1).tolist()
    dropped = 0
    for m in torch.argsort(w * h, descending=True, stable=True).tolist():  # largest first
        r, c = rows[m], cols[m]
        iou = box_iou(boxes[m : m + 1], predicted[r, c])[0]  # (B,)
        iou = iou.masked_fill(responsible[r, c], -1.0)  # a box serves one object
        j = int(iou.argmax())
        if iou[j] < 0:
            dropped += 1
            continue
        responsible[r, c, j] = True
        confidence[r, c, j] = iou[j]
        target_boxes[r, c, j] = torch.stack(
            (cx[m] * s - c, cy[m] * s - r, w[m].sqrt(), h[m].sqrt())
        )
        counts[r, c, int(labels[m]) - 1] += 1
    has_object = counts.sum(-1) > 0
    probs = counts / counts.sum(-1, keepdim=True).clamp(min=1)
    return GridTarget(responsible, target_boxes, confidence, has_object, probs, dropped)


def yolo_loss(
    pred: GridPrediction,
    targets: list[GridTarget],
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
) -> dict[str, torch.Tensor]:
    """The four parts of the v1 loss, each summed over a picture and averaged over the batch."""
    responsible = torch.stack([t.responsible for t in targets])
    boxes = torch.stack([t.boxes for t in targets])
    confidence = torch.stack([t.confidence for t in targets])
    has_object = torch.stack([t.has_object for t in targets])
    probs = torch.stack([t.probs for t in targets])
    n = len(targets)
    coord = ((pred.boxes - boxes) ** 2).sum(-1)[responsible].sum()
    obj = ((pred.confidence - confidence) ** 2)[responsible].sum()
    noobj = (pred.confidence**2)[~responsible].sum()
    cls = ((pred.probs - probs) ** 2).sum(-1)[has_object].sum()
    return {
        "loss_coord": lambda_coord * coord / n,
        "loss_obj": obj / n,
        "loss_noobj": lambda_noobj * noobj / n,
        "loss_class": cls / n,
    }
