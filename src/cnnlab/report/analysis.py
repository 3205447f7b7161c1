"""The report's test-split part: the trained model run over the test images on the CPU.

Every piece is optional: a run whose data or checkpoint cannot be had still gets its page,
with a note that says what is missing and why.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import UserError
from cnnlab.report import plots
from cnnlab.tasks.table import get_task, load

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


def add_classification(result: Analysis, run, max_images: int | None) -> None:
    """The classifier's test split: confusion matrix, per-class accuracy, confident mistakes,
    and the first convolution's filters (the classification row's ``analysis``)."""
    from cnnlab.models.parts import first_conv
    from cnnlab.report.classifier_results import classify_test_split, normalisation
    from cnnlab.viz.classification import confusion_matrix_image, filter_grid
    from cnnlab.viz.images import tensor_png

    dm, net = run.datamodule, run.module.net
    names = names_of(dm, dm.num_classes)
    mean, std = normalisation(dm)
    tally = classify_test_split(net, dm.test_dataloader(), dm.num_classes, mean, std, max_images)
    result.class_names, result.test_images, result.accuracy = names, tally.images, tally.accuracy
    result.confusion_png = tensor_png(confusion_matrix_image(tally.confusion, names))
    recall, counts = tally.per_class_accuracy, tally.confusion.sum(dim=1)
    result.per_class = [(n, float(recall[i]), int(counts[i])) for i, n in enumerate(names)]
    result.per_class_png = plots.per_class_png(recall, names)
    scale = max(1, 96 // max(m.image.shape[-1] for m in tally.mistakes)) if tally.mistakes else 1
    result.mistakes = [
        (tensor_png(m.image, scale), names[m.true], names[m.predicted], m.confidence)
        for m in tally.mistakes
    ]
    try:
        _, conv = first_conv(net)
    except UserError:
        result.notes.append("The network has no convolution layer: no filters to show.")
    else:
        grid = filter_grid(conv.weight)
        result.filters_shape = tuple(conv.weight.shape)
        result.filters_png = tensor_png(grid, scale=max(1, 320 // grid.shape[-1]))


def add_samples(result: Analysis, run, drawer: str) -> None:
    """The first test images with the predictions drawn by the task's ``drawer``, small images
    enlarged by a whole factor to about 600 pixels."""
    from cnnlab.viz.images import tensor_png

    names = getattr(run.datamodule, "class_names", None)
    grid = load(drawer)(run.module, run.datamodule.test_dataloader(), names)
    result.samples_png = tensor_png(grid, scale=max(1, 600 // grid.shape[-1]))


def analyse(checkpoint: Path | None, max_images: int | None) -> Analysis:
    """Restore the run's model from ``checkpoint`` (on the CPU, the data loaded in the main
    process) and look at it and at its test split, as its task's row says."""
    from cnnlab.factory.restore import restore

    result = Analysis(checkpoint=checkpoint)
    if checkpoint is None:
        return result
    try:
        # a handful of test batches: worker start-up would cost more than it saves
        run = restore(checkpoint, overrides={"data.num_workers": 0})
    except (UserError, OSError, RuntimeError, ValueError, KeyError) as e:
        result.notes.append(f"The model of {checkpoint} could not be rebuilt: {e}")
        return result
    run.module.cpu().eval()
    run.datamodule.setup("test")
    params = list(run.module.net.parameters())
    result.total_params = sum(p.numel() for p in params)
    result.trainable_params = sum(p.numel() for p in params if p.requires_grad)
    task = get_task(run.task)
    try:
        if task.analysis:
            load(task.analysis)(result, run, max_images)
        if task.drawer:
            add_samples(result, run, task.drawer)
    except (UserError, OSError, RuntimeError) as e:
        log.warning("Test-split analysis failed: %s", e)
        result.notes.append(f"The test split could not be analysed: {e}")
    return result
