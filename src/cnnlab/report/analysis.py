"""The report's test-split part: the trained model run over the test images on the CPU.

Every piece is optional: a run whose data or checkpoint cannot be had still gets its page,
with a note that says what is missing and why.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import UserError
from cnnlab.report import plots

log = logging.getLogger("cnnlab")


@dataclass
class Analysis:
    """What the page shows about the trained model; PNGs as bytes."""

    checkpoint: Path | None = None
    total_params: int | None = None
    trainable_params: int | None = None
    class_names: list[str] = field(default_factory=list)
    test_images: int = 0
    accuracy: float | None = None
    confusion_png: bytes | None = None
    per_class: list[tuple[str, float, int]] = field(default_factory=list)  # name, acc, images
    per_class_png: bytes | None = None
    mistakes: list[tuple[bytes, str, str, float]] = field(default_factory=list)
    filters_png: bytes | None = None
    filters_shape: tuple[int, ...] = ()
    samples_png: bytes | None = None
    notes: list[str] = field(default_factory=list)


def names_of(datamodule, count: int) -> list[str]:
    try:
        names = [str(n) for n in datamodule.class_names]
    except (AttributeError, OSError, UserError, RuntimeError):
        names = []
    return names if len(names) == count else [str(i) for i in range(count)]


def add_classification(result: Analysis, rebuilt, max_images: int | None) -> None:
    from cnnlab.models.parts import first_conv
    from cnnlab.report.classify_test import classify_test_split, normalisation
    from cnnlab.report.figures import confusion_matrix_image, filter_grid

    dm, net = rebuilt.datamodule, rebuilt.module.net
    names = names_of(dm, dm.num_classes)
    mean, std = normalisation(dm)
    tally = classify_test_split(net, dm.test_dataloader(), dm.num_classes, mean, std, max_images)
    result.class_names, result.test_images, result.accuracy = names, tally.images, tally.accuracy
    result.confusion_png = plots.tensor_png(confusion_matrix_image(tally.confusion, names))
    recall, counts = tally.per_class_accuracy, tally.confusion.sum(dim=1)
    result.per_class = [(n, float(recall[i]), int(counts[i])) for i, n in enumerate(names)]
    result.per_class_png = plots.per_class_png(recall, names)
    scale = max(1, 96 // max(m.image.shape[-1] for m in tally.mistakes)) if tally.mistakes else 1
    result.mistakes = [
        (plots.tensor_png(m.image, scale), names[m.true], names[m.predicted], m.confidence)
        for m in tally.mistakes
    ]
    try:
        _, conv = first_conv(net)
    except UserError:
        result.notes.append("The network has no convolution layer: no filters to show.")
    else:
        grid = filter_grid(conv.weight)
        result.filters_shape = tuple(conv.weight.shape)
        result.filters_png = plots.tensor_png(grid, scale=max(1, 320 // grid.shape[-1]))


def enlarged(grid) -> bytes:
    """PNG of a uint8 grid, small test images enlarged by a whole factor to about 600 pixels."""
    return plots.tensor_png(grid, scale=max(1, 600 // grid.shape[-1]))


def analyse(checkpoint: Path | None, run_dir: Path, max_images: int | None) -> Analysis:
    """Rebuild the run's model from ``checkpoint`` and look at it and at its test split."""
    from cnnlab.report.rebuild import rebuild
    from cnnlab.report.samples import detection_samples, segmentation_samples

    result = Analysis(checkpoint=checkpoint)
    if checkpoint is None:
        return result
    try:
        rebuilt = rebuild(checkpoint, run_dir)
    except (UserError, OSError, RuntimeError, ValueError, KeyError) as e:
        result.notes.append(f"The model of {checkpoint} could not be rebuilt: {e}")
        return result
    params = list(rebuilt.module.net.parameters())
    result.total_params = sum(p.numel() for p in params)
    result.trainable_params = sum(p.numel() for p in params if p.requires_grad)
    loader = rebuilt.datamodule.test_dataloader()
    try:
        if rebuilt.task == "classification":
            add_classification(result, rebuilt, max_images)
        elif rebuilt.task == "detection":
            names = getattr(rebuilt.datamodule, "class_names", None)
            result.samples_png = enlarged(detection_samples(rebuilt.module, loader, names))
        elif rebuilt.task == "segmentation":
            result.samples_png = enlarged(segmentation_samples(rebuilt.module, loader))
    except (UserError, OSError, RuntimeError) as e:
        log.warning("Test-split analysis failed: %s", e)
        result.notes.append(f"The test split could not be analysed: {e}")
    return result
