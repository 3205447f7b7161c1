"""The report's detector sections: AP per class with its precision-recall curves, the confusion
matrix with a background row and column, and galleries of the highest-scoring false detections
and of the largest missed objects, from the restored detector over the test split.

AP is COCO's, computed by pycocotools through torchmetrics (as ``test/map_<class>``); the
matrix and the galleries are taken at the report's thresholds, with the pairing of
``cnnlab.tasks.detection_matching``.
"""

from dataclasses import dataclass, field
from html import escape

import torch

from cnnlab.report.markup import gallery, img, table
from cnnlab.tasks.detection import detect
from cnnlab.tasks.detection_matching import add_to_matrix, match_detections
from cnnlab.viz.boxes import PRED_COLOR, TRUE_COLOR, draw_detections, label_text
from cnnlab.viz.images import enlarged

GALLERY = 8  # pictures in each gallery: two rows on the page
MISSED_COLOR = "orange"
TILE = 256  # pixels: small test pictures are enlarged by a whole factor to about this


@dataclass
class Example:
    """One gallery picture: a false detection or a missed object, and what to say of it."""

    rank: float  # the detection's score or the object's area: the largest are shown
    image: torch.Tensor  # the test picture, float (3, H, W) in [0, 1]
    target: dict
    pred: dict  # the detections at or above the score threshold
    box: int  # which of ``pred`` (false detections) or of ``target`` (missed objects)
    text: str


@dataclass
class Findings:
    matrix: torch.Tensor  # (K + 1, K + 1), background last
    false: list[Example] = field(default_factory=list)
    missed: list[Example] = field(default_factory=list)
    images: int = 0


def _largest(examples: list[Example], new: list[Example]) -> list[Example]:
    return sorted(examples + new, key=lambda e: -e.rank)[:GALLERY]


def _size(box: torch.Tensor) -> str:
    return f"{float(box[2] - box[0]):.0f}x{float(box[3] - box[1]):.0f} px"


def examples_of(image, target, pred, iou_threshold, score_threshold, names):
    """The false detections and missed objects of one picture, described, and its pairing."""
    from torchvision.ops import box_iou

    matching = match_detections(pred, target, iou_threshold, score_threshold)
    kept = {k: pred[k][matching.kept] for k in ("boxes", "labels", "scores")}
    position = {d: i for i, d in enumerate(matching.kept)}
    t_boxes, t_labels = target["boxes"], target["labels"]
    iou = box_iou(t_boxes.float(), pred["boxes"].float()) if len(t_boxes) else None
    false, missed = [], []

    def name(label) -> str:
        return label_text(int(label), names)

    for o, d in matching.pairs:
        if t_labels[o] != pred["labels"][d]:
            score, overlap = float(pred["scores"][d]), float(iou[o, d])
            said, true = name(pred["labels"][d]), name(t_labels[o])
            false.append(Example(score, image, target, kept, position[d],
                                 f"{said} {score:.2f}: a {true} (IoU {overlap:.2f})"))  # fmt: skip
            missed.append(Example(float(_area(t_boxes[o])), image, target, kept, o,
                                  f"{true}, {_size(t_boxes[o])}: taken for a {said} "
                                  f"{score:.2f}"))  # fmt: skip
    found = {o for o, _ in matching.pairs}
    for d in matching.false:
        score, said = float(pred["scores"][d]), name(pred["labels"][d])
        best = int(iou[:, d].argmax()) if iou is not None else None
        overlap = float(iou[best, d]) if best is not None else 0.0
        if best is not None and overlap >= iou_threshold and best in found:
            true = name(t_labels[best])
            finder = name(pred["labels"][next(d2 for o2, d2 in matching.pairs if o2 == best)])
            why = (
                f"a second detection of a {true} already found"
                if said == true
                else f"on a {true} already found as a {finder}"
            )
        elif overlap >= 0.1:
            why = f"badly placed on a {name(t_labels[best])} (IoU {overlap:.2f})"
        else:
            why = "no object there"
        false.append(Example(score, image, target, kept, position[d], f"{said} {score:.2f}: {why}"))
    for o in matching.missed:
        near = float(iou[o, matching.kept].max()) if matching.kept else 0.0
        text = f"{name(t_labels[o])}, {_size(t_boxes[o])}: not found"
        if near > 0:
            text += f" (closest detection IoU {near:.2f})"
        missed.append(Example(float(_area(t_boxes[o])), image, target, kept, o, text))
    return matching, false, missed


def _area(box: torch.Tensor) -> torch.Tensor:
    return (box[2] - box[0]) * (box[3] - box[1])


@torch.inference_mode()
def find_errors(net, loader, num_classes: int, settings, names, metric) -> Findings:
    """Run ``net`` over ``loader`` (at most ``settings.max_images`` pictures): the confusion
    matrix, the galleries' examples, and ``metric`` (mAP) updated."""
    found = Findings(torch.zeros(num_classes, num_classes, dtype=torch.int64))
    limit = settings.max_images
    for images, targets in loader:
        if limit is not None and found.images >= limit:
            break
        images, targets = list(images), list(targets)
        if limit is not None:
            images, targets = images[: limit - found.images], targets[: limit - found.images]
        preds = [{k: v.cpu() for k, v in p.items()} for p in detect(net, images, targets)]
        truth = [{k: t[k] for k in ("boxes", "labels", "iscrowd") if k in t} for t in targets]
        metric.update([{k: p[k] for k in ("boxes", "labels", "scores")} for p in preds], truth)
        for image, target, pred in zip(images, truth, preds, strict=True):
            matching, false, missed = examples_of(
                image, target, pred, settings.iou_threshold, settings.score_threshold, names
            )
            add_to_matrix(found.matrix, matching, pred, target)
            found.false, found.missed = _largest(found.false, false), _largest(found.missed, missed)
        found.images += len(images)
    return found


def tile(example: Example, names, missed: bool) -> torch.Tensor:
    """The picture enlarged, its true boxes in green; a false detection in red, or a missed
    object in orange with the detections that overlap it (red)."""
    scale = max(1, TILE // max(example.image.shape[-2:]))
    picture = enlarged((example.image.clamp(0, 1) * 255).round().to(torch.uint8), scale)
    boxes, labels = example.target["boxes"] * scale, example.target["labels"]
    pred = example.pred
    if missed:
        from torchvision.ops import box_iou

        others = [i for i in range(len(labels)) if i != example.box]
        near = box_iou(boxes[example.box][None].float(), pred["boxes"].float() * scale)[0] > 0
        picture = draw_detections(
            picture, pred["boxes"][near] * scale, pred["labels"][near], pred["scores"][near],
            names, PRED_COLOR,
        )  # fmt: skip
        picture = draw_detections(picture, boxes[others], labels[others], None, names, TRUE_COLOR)
        one = slice(example.box, example.box + 1)
        return draw_detections(picture, boxes[one], labels[one], None, names, MISSED_COLOR)
    picture = draw_detections(picture, boxes, labels, None, names, TRUE_COLOR)
    one = slice(example.box, example.box + 1)
    return draw_detections(
        picture, pred["boxes"][one] * scale, pred["labels"][one], pred["scores"][one], names
    )


def gallery_html(examples: list[Example], names, missed: bool) -> str:
    from cnnlab.viz.images import tensor_png

    if not examples:
        return "<p>None.</p>"
    tiles = [(img(tensor_png(tile(e, names, missed)), e.text), escape(e.text)) for e in examples]
    return gallery(tiles)


def ap_rows(result: dict, matrix: torch.Tensor, names: list[str]) -> tuple[list, dict]:
    """The table's rows (one per class with objects or detections) and the curves to draw:
    IoU -> class name -> (interpolated precision at COCO's 101 recall points, AP)."""
    classes = result["classes"].flatten().tolist()
    per_class = result["map_per_class"].flatten().tolist()
    precision = result["precision"]  # (IoU 0.50:0.95, recall 101, class, area, max detections)
    curves: dict[float, dict] = {0.5: {}, 0.75: {}}
    rows = []
    background = len(matrix) - 1
    for k, label in enumerate(classes):
        name = label_text(int(label), names)
        i = int(label) - 1
        objects = int(matrix[i].sum())
        found, missed = int(matrix[i, i]), int(matrix[i, background])
        false = int(matrix[:, i].sum()) - found
        aps = {}
        for t, iou in ((0, 0.5), (5, 0.75)):  # COCO's IoU thresholds 0.50, 0.55, ..., 0.95
            p = precision[t, :, k, 0, -1]  # all areas, up to 100 detections a picture
            if bool((p >= 0).any()):  # -1: no object of the class in the split
                aps[iou] = float(p[p >= 0].mean())
                curves[iou][name] = (p.clamp(min=0).numpy(), aps[iou])
        cells = [per_class[k] if per_class[k] >= 0 else None, aps.get(0.5)]
        rows.append(
            [escape(name), str(objects), *("—" if v is None else f"{v:.3f}" for v in cells),
             str(found), str(objects - found - missed), str(missed), str(false)]
        )  # fmt: skip
    return rows, curves


def add_detection(result, run, settings) -> None:
    """The detector's test split (the detection row's ``analysis``)."""
    from cnnlab.report.plots import pr_curves_png
    from cnnlab.tasks.detection import new_map_metric
    from cnnlab.viz.classification import confusion_matrix_image
    from cnnlab.viz.images import tensor_png

    module, dm = run.module, run.datamodule
    k = module.num_classes  # with the background
    names = [str(n) for n in getattr(dm, "class_names", None) or range(1, k)]
    metric = new_map_metric(per_class=True, extended_summary=True)
    found = find_errors(module.net, dm.test_dataloader(), k, settings, names, metric)
    result.test_images = found.images
    rows, curves = ap_rows(metric.compute(), found.matrix, names)
    at = f"IoU at least {settings.iou_threshold:g}, score at least {settings.score_threshold:g}"
    matrix = confusion_matrix_image(
        found.matrix, [*names, "background"], f"{at}:", "objects and false detections"
    )
    matrix_png = tensor_png(matrix, scale=2)
    head = ["class", "objects", "AP", "AP50", "found", "other class", "missed", "false"]
    result.sections += [
        f"<h2>Detection per class</h2><p>{found.images} test images, with "
        f"{escape(result.checkpoint.name)}. AP is COCO's (IoU 0.50:0.95; AP50 at 0.50), over "
        f"every detection; the counts are at the report's thresholds ({at}): objects found "
        "with the right class, found but taken for another class, missed, and false "
        "detections of the class.</p>" + table(head, rows),
        "<h2>Precision-recall curves</h2><p>Each class's precision against its recall as the "
        "score threshold falls, interpolated as COCO does.</p>"
        + (img(pr_curves_png(curves), "precision-recall curves") if curves[0.5] else ""),
        f"<h2>Detection confusion matrix</h2><p>Each object's row is its true class, its "
        f"column the class of the detection that found it ({at}). The background column counts "
        "the objects no detection found, the background row the detections of no object.</p>"
        + img(matrix_png, "detection confusion matrix"),
        "<h2>Highest-scoring false detections</h2><p>True boxes in green, the false detection "
        "in red.</p>" + gallery_html(found.false, names, missed=False),
        "<h2>Largest missed objects</h2><p>The missed object in orange, the other true boxes in "
        "green, the detections that overlap it in red.</p>"
        + gallery_html(found.missed, names, missed=True),
    ]
