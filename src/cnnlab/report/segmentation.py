"""The report's segmentation sections: each class's IoU over the test split, and the test
images the model segments worst, drawn beside their true and predicted masks.

Pixels labelled ``IGNORE_INDEX`` (255) count nowhere: not in the IoUs, the pixel shares, the
pixel accuracy or an image's own mean IoU, whatever the model predicted there.
"""

import math
from dataclasses import dataclass, field
from html import escape

import torch

from cnnlab.data.transforms import IGNORE_INDEX
from cnnlab.report.markup import gallery, img, table

WORST = 8  # worst test images drawn: two rows of the gallery's four
TILE_WIDTH = 300  # about how wide a drawn [image | truth | prediction] strip is, in pixels


def pixel_confusion(
    true: torch.Tensor, pred: torch.Tensor, num_classes: int | None = None
) -> torch.Tensor:
    """Pixel counts (K, K) int64 of true (rows) against predicted (columns) class ids, the
    pixels labelled ``IGNORE_INDEX`` left out; K is ``num_classes`` or the largest id + 1."""
    keep = true != IGNORE_INDEX
    t, p = true[keep].long().cpu(), pred[keep].long().cpu()
    if num_classes is None:
        num_classes = int(max(t.max(), p.max())) + 1 if t.numel() else 1
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def class_ious(confusion: torch.Tensor) -> torch.Tensor:
    """Each class's TP / (TP + FP + FN) from a confusion matrix (float64), NaN for a class in
    neither the truth nor the prediction."""
    hits = confusion.diag()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - hits
    return hits.double() / union.double().where(union > 0, torch.nan)


def mean_iou(confusion: torch.Tensor) -> float:
    """The mean of ``class_ious`` over the classes present (NaN where none is)."""
    ious = class_ious(confusion)
    present = ~ious.isnan()
    return float(ious[present].mean()) if bool(present.any()) else math.nan


def image_miou(true: torch.Tensor, pred: torch.Tensor, num_classes: int | None = None) -> float:
    """One image's mean IoU: the mean, over the classes in its truth or its prediction, of
    TP / (TP + FP + FN), the pixels labelled ``IGNORE_INDEX`` left out (NaN where all are).
    ``true`` and ``pred`` are class ids (H, W)."""
    return mean_iou(pixel_confusion(true, pred, num_classes))


@dataclass
class Worst:
    """One badly segmented test image."""

    index: int  # its place in the test split, from 0
    miou: float  # its own mean IoU (``image_miou``)
    confusion: torch.Tensor  # (K, K) its pixels, true class against predicted
    image: torch.Tensor | None = None  # uint8 (3, H, W), unnormalised
    mask: torch.Tensor | None = None  # true ids (H, W)
    pred: torch.Tensor | None = None  # predicted ids (H, W)

    def confused(self, names: list[str]) -> str:
        """Its largest off-diagonal count: "circle taken for background in 310 pixels"."""
        off = self.confusion.clone()
        off.fill_diagonal_(0)
        if int(off.max()) == 0:
            return "no pixel wrong"
        true, said = divmod(int(off.argmax()), len(off))
        count = int(off[true, said])
        return f"{names[true]} taken for {names[said]} in {count} pixel{'s' * (count != 1)}"


@dataclass
class SegmentationResults:
    """The model on the test split: whole-split counts and its worst images."""

    class_iou: torch.Tensor  # (K,) torchmetrics' per-class IoU (0 for a class absent from both)
    miou: float  # torchmetrics' mean IoU over the classes present, as test/miou
    confusion: torch.Tensor  # (K, K) int64 pixels, true class against predicted
    containing: torch.Tensor  # (K,) test images whose truth has the class
    images: int
    worst: list[Worst] = field(default_factory=list)  # lowest mean IoU first

    @property
    def present(self) -> torch.Tensor:
        """(K,) bool: the class is in the truth or the predictions."""
        return (self.confusion.sum(dim=0) + self.confusion.sum(dim=1)) > 0

    @property
    def pixel_share(self) -> torch.Tensor:
        """(K,) share of the labelled pixels that truly are the class."""
        truth = self.confusion.sum(dim=1).double()
        return truth / max(int(truth.sum()), 1)

    @property
    def pixel_accuracy(self) -> float:
        return float(self.confusion.diag().sum()) / max(int(self.confusion.sum()), 1)


@torch.inference_mode()
def segment_test_split(
    module, loader, max_images: int | None = None, worst: int = WORST
) -> SegmentationResults | None:
    """Run ``module`` (images -> scores (B, K, H, W), or a tuple that starts with them) over
    ``loader``'s (images, masks) batches, at most ``max_images`` images; None where there are
    none. The ``worst`` lowest image mean IoUs are kept (ties: the earlier image), drawn."""
    from cnnlab.tasks.segmentation import iou_metric
    from cnnlab.viz.images import unnormalize

    seen, kept = 0, []
    for images, masks in loader:
        if max_images is not None:
            if seen >= max_images:
                break
            images, masks = images[: max_images - seen], masks[: max_images - seen]
        out = module(images)
        scores = out[0] if isinstance(out, tuple) else out
        preds, masks = scores.argmax(dim=1).cpu(), masks.cpu()
        if seen == 0:
            k = scores.shape[1]
            per_class, mean = iou_metric(k, average=None), iou_metric(k)
            confusion = torch.zeros(k, k, dtype=torch.int64)
            containing = torch.zeros(k, dtype=torch.int64)
        per_class.update(preds, masks)
        mean.update(preds, masks)
        new = []
        for i, (mask, pred) in enumerate(zip(masks, preds, strict=True)):
            counts = pixel_confusion(mask, pred, k)
            confusion += counts
            containing += counts.sum(dim=1) > 0
            miou = mean_iou(counts)
            if not math.isnan(miou):  # an image with no labelled pixel says nothing
                new.append(Worst(seen + i, miou, counts))
        kept = sorted(kept + new, key=lambda w: (w.miou, w.index))[:worst]
        for w in kept:
            if w.image is None:  # one of this batch's
                i = w.index - seen
                w.image = unnormalize(images[i : i + 1])[0]
                w.mask, w.pred = masks[i].clone(), preds[i].clone()
        seen += len(masks)
    if seen == 0:
        return None
    return SegmentationResults(
        per_class.compute(), float(mean.compute()), confusion, containing, seen, kept
    )


def tile(w: Worst) -> torch.Tensor:
    """uint8 (3, H, W): [image | true mask over it | predicted mask over it], enlarged by a
    whole factor to about ``TILE_WIDTH`` pixels wide."""
    from cnnlab.viz.images import enlarged, image_grid
    from cnnlab.viz.masks import mask_rows

    strip = image_grid(mask_rows(w.image[None], w.mask[None], w.pred[None]), columns=3)
    scale = max(1, round(TILE_WIDTH / strip.shape[-1]))
    return enlarged(strip, scale)


def iou_html(found: SegmentationResults, names: list[str], checkpoint: str, crf: bool) -> str:
    rows = [
        [
            escape(name),
            f"{float(iou):.3f}" if present else "—",
            f"{float(share):.2%}",
            str(int(images)),
        ]
        for name, iou, present, share, images in zip(
            names, found.class_iou, found.present, found.pixel_share, found.containing,
            strict=True,
        )
    ]  # fmt: skip
    without_crf = (
        " The predictions are the network's own (argmax), without the CRF that refined the "
        "run's test metrics."
        if crf
        else ""
    )
    return (
        "<h2>Per-class IoU</h2><p>Each class's IoU (its true and predicted pixels' intersection "
        "over their union) over all the test images together, the share of the labelled "
        "pixels that truly are the class, and how many test images contain it; — marks a "
        f"class in neither the truth nor the predictions.{without_crf}</p>"
        f"<p>Mean IoU {found.miou:.4f} (over the classes present) and pixel accuracy "
        f"{found.pixel_accuracy:.4f} on the {found.images} test images, with "
        f"{escape(checkpoint)}.</p>" + table(["class", "IoU", "pixels", "images"], rows)
    )


def worst_html(found: SegmentationResults, names: list[str]) -> str:
    from cnnlab.viz.images import tensor_png

    head = "<h2>Worst test images</h2>"
    if not found.worst:
        return head + "<p>No test image has a labelled pixel.</p>"
    tiles = []
    for w in found.worst:
        text = f"image #{w.index}, mean IoU {w.miou:.2f}"
        confused = escape(w.confused(names))
        tiles.append((img(tensor_png(tile(w)), f"{text}: {confused}"), f"{text}<br>{confused}"))
    return (
        f"{head}<p>The {len(found.worst)} test images with the lowest mean IoU of their own "
        "(over the classes in their truth or prediction), worst first, numbered by their place "
        "in the test split from 0: each the image, its true mask over it and the predicted "
        "mask over it, with the classes it mixes up most.</p>" + gallery(tiles, "gallery")
    )


def add_segmentation(result, run, settings) -> None:
    """The segmenter's test split (the segmentation row's ``analysis``)."""
    from cnnlab.report.analysis import names_of

    module, dm = run.module, run.datamodule
    found = segment_test_split(module, dm.test_dataloader(), settings.max_images)
    if found is None:
        result.notes.append("The test split has no images: no per-class IoU to show.")
        return
    result.test_images = found.images
    names = names_of(dm, len(found.confusion))
    crf = getattr(module, "crf", None) is not None
    checkpoint = result.checkpoint.name if result.checkpoint else "the model"
    result.sections += [iou_html(found, names, checkpoint, crf), worst_html(found, names)]
