"""Which detection found which object: the matching behind the detection confusion matrix
(TensorBoard's ``val/confusion_matrix``, the report) and the report's error galleries.

mAP ranks every detection at every score; a confusion matrix needs one answer per object, so
it is taken at stated thresholds: detections scoring below ``score_threshold`` are dropped, and
a detection and an object pair up when their boxes overlap by at least ``iou_threshold`` (IoU).
Pairing is one to one, in two passes:

1. as COCO's evaluation does, each detection in order of score takes the best-overlapping
   object of its own class not yet taken;
2. the detections and objects left pair up regardless of class, best overlap first: these are
   the objects found but taken for another class (the matrix's off-diagonal cells).

What is left over is the background: objects no detection found (the background column,
"missed") and detections of no object (the background row, "false detections"). Objects marked
``iscrowd`` (COCO crowds, VOC's difficult) are neither counted as missed nor make a detection on
them false, as in mAP.

The matrix is (K + 1, K + 1): rows the true class, columns the detected one, classes 1..K at
indices 0..K-1 and the background last.
"""

from dataclasses import dataclass, field

import torch
from torchvision.ops import box_iou


@dataclass
class Matching:
    """One image's answer: indices into its objects (truth) and its detections (kept ones)."""

    pairs: list[tuple[int, int]] = field(default_factory=list)  # (object, detection)
    missed: list[int] = field(default_factory=list)  # objects no detection found
    false: list[int] = field(default_factory=list)  # detections of no object
    kept: list[int] = field(default_factory=list)  # detections at or above the score threshold


def match_detections(
    pred: dict[str, torch.Tensor],
    target: dict[str, torch.Tensor],
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> Matching:
    """Pair ``pred`` ({"boxes", "labels", "scores"}) with ``target`` ({"boxes", "labels"},
    optionally "iscrowd"), both xyxy boxes of one image, as the module docstring says."""
    scores = pred["scores"].detach().cpu()
    order = [i for i in scores.argsort(descending=True).tolist() if scores[i] >= score_threshold]
    result = Matching(kept=order)
    true_boxes, true_labels = target["boxes"].detach().cpu(), target["labels"].cpu()
    crowd = target.get("iscrowd")
    crowd = crowd.cpu().bool() if crowd is not None else torch.zeros(len(true_labels), dtype=bool)
    objects = [i for i in range(len(true_labels)) if not crowd[i]]
    boxes, labels = pred["boxes"].detach().cpu(), pred["labels"].cpu()
    if not order or not len(true_labels):
        result.missed, result.false = objects, order
        return result
    iou = box_iou(true_boxes.float(), boxes.float())  # (objects, detections)
    free = set(objects)
    left: list[int] = []
    for d in order:  # pass 1: by score, the best free object of the same class
        same = [o for o in free if true_labels[o] == labels[d] and iou[o, d] >= iou_threshold]
        if same:
            best = max(same, key=lambda o: float(iou[o, d]))
            result.pairs.append((best, d))
            free.discard(best)
        else:
            left.append(d)
    candidates = sorted(
        ((float(iou[o, d]), o, d) for o in free for d in left if iou[o, d] >= iou_threshold),
        reverse=True,
    )
    taken: set[int] = set()
    for _, o, d in candidates:  # pass 2: what is left, any class, best overlap first
        if o in free and d not in taken:
            result.pairs.append((o, d))
            free.discard(o)
            taken.add(d)
    result.missed = sorted(free)
    crowds = crowd.nonzero().flatten()
    for d in left:
        if d in taken:
            continue
        on_crowd = len(crowds) and bool((iou[crowds, d] >= iou_threshold).any())
        if not on_crowd:
            result.false.append(d)
    return result


def add_to_matrix(
    matrix: torch.Tensor, matching: Matching, pred: dict, target: dict
) -> torch.Tensor:
    """Count one image's ``matching`` into ``matrix`` (K + 1, K + 1), in place; returns it."""
    background = len(matrix) - 1
    true_labels, labels = target["labels"].cpu(), pred["labels"].cpu()
    for o, d in matching.pairs:
        matrix[int(true_labels[o]) - 1, int(labels[d]) - 1] += 1
    for o in matching.missed:
        matrix[int(true_labels[o]) - 1, background] += 1
    for d in matching.false:
        matrix[background, int(labels[d]) - 1] += 1
    return matrix


def confusion_counts(
    preds: list[dict],
    targets: list[dict],
    num_classes: int,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> torch.Tensor:
    """The (num_classes, num_classes) int64 matrix of a batch of images; ``num_classes``
    counts the background (K + 1, as the detectors' ``num_classes`` does)."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for pred, target in zip(preds, targets, strict=True):
        matching = match_detections(pred, target, iou_threshold, score_threshold)
        add_to_matrix(matrix, matching, pred, target)
    return matrix
