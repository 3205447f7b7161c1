"""What R-CNN and Fast R-CNN share: labelling and sampling proposals, the multi-task loss, and
turning per-region scores and offsets into detections.

Both classify regions of interest (proposals) into C + 1 classes, 0 the background, and move
each region's box with class-specific offsets (``box_coding``). They differ only in how a
region becomes features: R-CNN warps its pixels and runs the whole network on them, Fast R-CNN
pools it from one shared feature map.

Training (Girshick 2015, section 2.3): a proposal whose best IoU with a true box is at least
``fg_iou`` (0.5) is labelled with that box's class, one below ``bg_iou`` (0.5) is background;
the true boxes join the proposals so that every object has at least one perfect region. Each
picture gives ``rois_per_image`` regions, at most ``fg_fraction`` (a quarter) of them objects,
the rest background, drawn at random. The loss is the cross-entropy of the class plus
``lambda_box`` times the smooth L1 distance between the offsets predicted for the true class
and the targets, on object regions only, both averaged over the sampled regions.
"""

from dataclasses import dataclass

import torch
from torch.nn import functional as F
from torchvision.ops import box_iou

from cnnlab.models.box_coding import decode, encode
from cnnlab.models.nms import nms


@dataclass(frozen=True)
class RegionSettings:
    """How regions are labelled, sampled and turned into detections."""

    fg_iou: float = 0.5
    bg_iou: float = 0.5
    rois_per_image: int = 64
    fg_fraction: float = 0.25
    lambda_box: float = 1.0
    score_threshold: float = 0.01
    nms_iou: float = 0.5
    max_detections: int = 100


@dataclass
class Sampled:
    """The regions chosen for one training step, all pictures' together."""

    rois: list[torch.Tensor]  # per picture (k_i, 4) x1, y1, x2, y2 pixels
    labels: torch.Tensor  # (K,) 0 background, 1..C
    box_targets: torch.Tensor  # (K, 4) encoded offsets; meaningful where labels > 0


def label_regions(
    rois: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, fg_iou: float, bg_iou: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each region's label (its best true box's class, 0 background, -1 neither) and that box."""
    if len(boxes) == 0:
        return torch.zeros(len(rois), dtype=torch.int64, device=rois.device), rois.clone()
    best_iou, best = box_iou(rois, boxes).max(dim=1)
    out = labels[best].clone()
    out[best_iou < fg_iou] = -1
    out[best_iou < bg_iou] = 0
    return out, boxes[best]


def sample_regions(labels: torch.Tensor, count: int, fg_fraction: float) -> torch.Tensor:
    """Indices of at most ``count`` regions: objects up to ``fg_fraction`` of them, then
    background, each drawn at random (torch's generator: seeded runs repeat)."""
    fg = torch.nonzero(labels > 0).flatten()
    bg = torch.nonzero(labels == 0).flatten()
    n_fg = min(len(fg), round(count * fg_fraction))
    n_bg = min(len(bg), count - n_fg)
    fg = fg[torch.randperm(len(fg), device=fg.device)[:n_fg]]
    bg = bg[torch.randperm(len(bg), device=bg.device)[:n_bg]]
    return torch.cat([fg, bg])


def sample_training_regions(
    proposals: list[torch.Tensor], targets: list[dict], settings: RegionSettings
) -> Sampled:
    """Label each picture's proposals (and its true boxes) and draw its training regions."""
    rois, labels, box_targets = [], [], []
    for regions, target in zip(proposals, targets, strict=True):
        boxes = target["boxes"].to(regions)
        regions = torch.cat([regions, boxes])
        label, matched = label_regions(
            regions, boxes, target["labels"].to(regions.device), settings.fg_iou, settings.bg_iou
        )
        keep = sample_regions(label, settings.rois_per_image, settings.fg_fraction)
        rois.append(regions[keep])
        labels.append(label[keep])
        box_targets.append(encode(regions[keep], matched[keep]))
    return Sampled(rois, torch.cat(labels), torch.cat(box_targets))


def region_loss(
    class_logits: torch.Tensor, box_deltas: torch.Tensor, sampled: Sampled, lambda_box: float
) -> dict[str, torch.Tensor]:
    """Cross-entropy over C + 1 classes and smooth L1 on the true class's offsets.

    ``class_logits`` (K, C + 1), ``box_deltas`` (K, C + 1, 4). Smooth L1 is the paper's (0.5 x^2
    below 1, |x| - 0.5 above): less pulled by outliers than squares, and the targets are scaled
    to about unit spread (``box_coding.WEIGHTS``)."""
    labels = sampled.labels
    classifier = F.cross_entropy(class_logits, labels)
    fg = torch.nonzero(labels > 0).flatten()
    chosen = box_deltas[fg, labels[fg]]  # (F, 4): the offsets of each region's true class
    box = F.smooth_l1_loss(chosen, sampled.box_targets[fg], beta=1.0, reduction="sum")
    return {"loss_classifier": classifier, "loss_box_reg": lambda_box * box / max(len(labels), 1)}


def detect_regions(
    class_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    rois: list[torch.Tensor],
    sizes: list[tuple[int, int]],
    settings: RegionSettings,
) -> list[dict[str, torch.Tensor]]:
    """Detections per picture: every class's moved box and score for every region, clipped to
    the picture (``sizes`` (height, width)), above the score threshold, per-class NMS, the best
    ``max_detections``."""
    scores = torch.softmax(class_logits, dim=1)
    found = []
    start = 0
    for regions, (height, width) in zip(rois, sizes, strict=True):
        k = len(regions)
        score = scores[start : start + k, 1:]  # (k, C): the background is not a detection
        boxes = decode(regions, box_deltas[start : start + k, 1:])  # (k, C, 4)
        start += k
        limit = boxes.new_tensor([width, height, width, height])
        boxes = torch.minimum(boxes.clamp(min=0), limit)
        region, label = torch.nonzero(score >= settings.score_threshold, as_tuple=True)
        boxes, score = boxes[region, label], score[region, label]
        size_ok = (boxes[:, 2] - boxes[:, 0] > 1e-2) & (boxes[:, 3] - boxes[:, 1] > 1e-2)
        boxes, score, label = boxes[size_ok], score[size_ok], label[size_ok]
        keep = nms(boxes, score, label, settings.nms_iou)[: settings.max_detections]
        found.append({"boxes": boxes[keep], "labels": label[keep] + 1, "scores": score[keep]})
    return found
