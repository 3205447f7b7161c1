"""YOLO v1 (Redmon, Divvala, Girshick and Farhadi, "You Only Look Once: Unified, Real-Time
Object Detection", CVPR 2016) on a cnnlab classification network.

The lecture's other way to detect: no proposals, one look. The picture, letterboxed into a
square (``models/letterbox.py``), is divided into an S x S grid; every cell predicts B boxes,
each with a confidence (how sure the box holds an object, times how well it fits), and one set
of C class probabilities for the cell. A box's score for a class is its confidence times the
cell's probability of that class. Boxes scoring at least ``score_threshold`` go through
per-class non-maximum suppression (``models/nms.py``) and the best ``max_detections`` are kept,
mapped back onto the original picture.

The network: the backbone's convolutional trunk (its classifier dropped, as for Faster R-CNN;
``drop_stages`` leaves its last stages out for a finer map), ``head_convs`` 3x3 convolutions
with leaky ReLU (slope 0.1), then the prediction. With ``fc_hidden`` set, the paper's: the map
pooled to at most S x S, a fully connected layer of ``fc_hidden`` units, dropout, and a fully
connected layer that gives S x S x (5B + C) numbers, so that every cell sees the whole picture.
With ``fc_hidden=None``, a 1x1 convolution on an S x S map: every cell is predicted from its own
place, which learns far faster from random weights on little data (YOLO v2 made the same move).
The paper's sizes (448 pixels, S = 7, B = 2, four 1,024-wide convolutions, 4,096 hidden units)
are the builder's defaults and configs/model/yolo_paper.yaml; configs/model/yolo.yaml is sized
for small pictures on a CPU.

Where we depart from the paper, and why:
- The paper's last layer is linear. Here x, y, sqrt w, sqrt h and the confidence pass through
  a sigmoid and the class scores through a softmax, so each stays in its range (0..1, and
  probabilities that sum to one) from the first step; the loss is still the paper's sums of
  squares on those values (``models/yolo_loss.py``).
- ``head_batchnorm=True`` (configs/model/yolo.yaml) puts batch normalisation after each head
  convolution, as YOLO v2 did; it trains faster from random weights. False is v1's head.
- A map larger than the grid is average-pooled to S x S (the paper's stride-2 convolution takes
  its 14 x 14 to 7 x 7); with the fully connected layers a smaller one is passed whole.

Like torchvision's detectors it takes a list of images (3, H, W) with values in 0..1, each of
its own size; in training, with targets ({"boxes": (N, 4) x1, y1, x2, y2 pixels, "labels":
(N,) in 1..K}), it returns the losses {loss_coord, loss_obj, loss_noobj, loss_class}, and in
eval mode a list of {"boxes", "labels", "scores"}, one per image. ``num_classes`` counts the
background (class 0), as for Faster R-CNN, so the cells predict ``num_classes - 1``
probabilities. The network carries ``task = "detection"``.
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.errors import UserError
from cnnlab.models.detection import check_backbone
from cnnlab.models.letterbox import Placement, letterbox, letterbox_boxes, unletterbox_boxes
from cnnlab.models.nms import nms
from cnnlab.models.trunk import Trunk, freeze_stages, probing, trunk_of
from cnnlab.models.yolo_loss import GridPrediction, assign, yolo_loss

TASK = "detection"


class YOLOv1(nn.Module):
    """The detector; build it with ``yolo(backbone, num_classes, ...)``."""

    task = TASK

    def __init__(
        self,
        body: nn.Module,
        channels: int,
        num_classes: int,
        image_size: int = 448,
        grid: int = 7,
        boxes_per_cell: int = 2,
        head_convs: int = 4,
        head_channels: int = 1024,
        head_batchnorm: bool = False,
        fc_hidden: int | None = 4096,
        dropout: float = 0.5,
        lambda_coord: float = 5.0,
        lambda_noobj: float = 0.5,
        score_threshold: float = 0.05,
        nms_iou: float = 0.5,
        max_detections: int = 100,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        self.image_size, self.grid, self.boxes_per_cell = image_size, grid, boxes_per_cell
        self.classes = num_classes - 1  # the cells' probabilities leave out the background
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj
        self.score_threshold, self.nms_iou = score_threshold, nms_iou
        self.max_detections = max_detections
        layers: list[nn.Module] = []
        for i in range(head_convs):
            width_in = channels if i == 0 else head_channels
            layers.append(nn.Conv2d(width_in, head_channels, 3, padding=1, bias=not head_batchnorm))
            if head_batchnorm:
                layers.append(nn.BatchNorm2d(head_channels))
            layers.append(nn.LeakyReLU(0.1, inplace=True))
        side = _map_side(body, image_size)
        if fc_hidden is None and side < grid:
            raise UserError(
                f"With model.fc_hidden=null each of the {grid} x {grid} cells is predicted from "
                f"its own place in the backbone's last map, but at model.image_size={image_size} "
                f"that map is only {side} x {side}: raise model.image_size, lower model.grid, "
                f"set model.drop_stages=1 (a finer map), or give model.fc_hidden a width."
            )
        side = min(grid, side)  # a map larger than the grid is pooled to it
        layers.append(nn.AdaptiveAvgPool2d(side))
        self.head = nn.Sequential(*layers)
        width = head_channels if head_convs else channels
        per_cell = 5 * boxes_per_cell + self.classes
        if fc_hidden is None:  # one 1x1 convolution: every cell from its own features
            self.fc = nn.Conv2d(width, per_cell, 1)
        else:  # the paper's: every cell from the whole picture
            self.fc = nn.Sequential(
                nn.Flatten(),
                nn.Linear(width * side * side, fc_hidden),
                nn.LeakyReLU(0.1, inplace=True),
                nn.Dropout(dropout),
                nn.Linear(fc_hidden, grid * grid * per_cell),
            )
        self.convolutional = fc_hidden is None
        mean = IMAGENET_MEAN if image_mean is None else tuple(image_mean)
        std = IMAGENET_STD if image_std is None else tuple(image_std)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The raw grid: normalised square images (N, 3, size, size) -> (N, S, S, 5B + C)."""
        n, s = x.shape[0], self.grid
        out = self.fc(self.head(self.body(x)))
        if self.convolutional:
            return out.permute(0, 2, 3, 1)  # (N, 5B + C, S, S) -> (N, S, S, 5B + C)
        return out.view(n, s, s, -1)

    def split(self, raw: torch.Tensor) -> GridPrediction:
        """The raw grid squashed into range and cut into boxes, confidences and probabilities."""
        n, s, b = raw.shape[0], self.grid, self.boxes_per_cell
        per_box = torch.sigmoid(raw[..., : 5 * b]).view(n, s, s, b, 5)
        probs = torch.softmax(raw[..., 5 * b :], dim=-1)
        return GridPrediction(per_box[..., :4], per_box[..., 4], probs)

    def prepare(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[Placement]]:
        """Letterbox each image into the square, stack and normalise them."""
        boxed = [letterbox(image, self.image_size) for image in images]
        x = torch.stack([canvas for canvas, _ in boxed])
        return (x - self.mean) / self.std, [place for _, place in boxed]

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        x, places = self.prepare(images)
        pred = self.split(self.outputs(x))
        if self.training:
            if targets is None:
                raise ValueError("In training mode YOLO needs the targets, to compute its loss.")
            return self.loss(pred, targets, places)
        return self.detect(pred, places)

    def loss(
        self, pred: GridPrediction, targets: list[dict], places: list[Placement]
    ) -> dict[str, torch.Tensor]:
        corners = pred.corners().detach()
        grids = []
        for i, (target, place) in enumerate(zip(targets, places, strict=True)):
            boxes = letterbox_boxes(target["boxes"].to(corners), place) / self.image_size
            grids.append(assign(boxes, target["labels"], corners[i], self.classes))
        return yolo_loss(pred, grids, self.lambda_coord, self.lambda_noobj)

    @torch.no_grad()
    def detect(self, pred: GridPrediction, places: list[Placement]) -> list[dict]:
        """Class-specific scores, threshold, per-class NMS, the best ``max_detections``."""
        corners = pred.corners().flatten(1, 3) * self.image_size  # (N, S*S*B, 4) canvas pixels
        scores = pred.confidence[..., None] * pred.probs[:, :, :, None, :]  # (N, S, S, B, C)
        scores = scores.flatten(1, 3)  # (N, S*S*B, C)
        found = []
        for boxes, score, place in zip(corners, scores, places, strict=True):
            box_index, label = torch.nonzero(score >= self.score_threshold, as_tuple=True)
            boxes, score = boxes[box_index], score[box_index, label]
            keep = nms(boxes, score, label, self.nms_iou)[: self.max_detections]
            found.append(
                {
                    "boxes": unletterbox_boxes(boxes[keep], place),
                    "labels": label[keep] + 1,
                    "scores": score[keep],
                }
            )
        return found


def _map_side(body: nn.Module, image_size: int) -> int:
    """The side of the body's last map for a square ``image_size`` input."""
    with probing(body):
        return body(torch.zeros(1, 3, image_size, image_size)).shape[-1]


def yolo(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int = 3,
    trainable_layers: int | None = None,
    drop_stages: int = 0,
    **kwargs,
) -> YOLOv1:
    """YOLO v1 on a built cnnlab classification network (its classifier is dropped).

    ``trainable_layers=k`` trains only the backbone's last k stages (None: all);
    ``drop_stages=k`` leaves its last k stages out, for a finer map (ResNet's stride 32 becomes
    16 with k = 1) at less cost; the rest of
    the keyword arguments are ``YOLOv1``'s (image size, grid, head sizes, loss weights,
    inference thresholds).
    """
    check_backbone(backbone, num_classes, in_channels)
    trunk = trunk_of(backbone)
    if not 0 <= drop_stages < len(trunk.stages):
        raise UserError(
            f"model.drop_stages={drop_stages}, but the {type(backbone).__name__} trunk has "
            f"{len(trunk.stages)} stages: choose 0 to {len(trunk.stages) - 1}."
        )
    kept = trunk.stages[: len(trunk.stages) - drop_stages]
    names = [name for stage in kept for name in stage]
    body = nn.Sequential(OrderedDict((n, trunk.body.get_submodule(n)) for n in names))
    trunk = Trunk(body, kept, trunk.channels[: len(kept)])
    freeze_stages(trunk, trainable_layers)
    return YOLOv1(body, trunk.channels[-1], num_classes, **kwargs)
