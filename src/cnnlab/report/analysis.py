"""The report's test-split part: the trained model run over the test images on the CPU.

Every piece is optional: a run whose data or checkpoint cannot be had still gets its page,
with a note that says what is missing and why.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import UserError
from cnnlab.report.settings import ReportSettings
from cnnlab.tasks.table import get_task, load

log = logging.getLogger("cnnlab")


@dataclass
class Analysis:
    """What the page shows about the trained model: each task's sections as HTML."""

    checkpoint: Path | None = None
    total_params: int | None = None
    trainable_params: int | None = None
    test_images: int = 0
    sections: list[str] = field(default_factory=list)  # the task's analysis, in page order
    samples_png: bytes | None = None
    notes: list[str] = field(default_factory=list)


def names_of(datamodule, count: int) -> list[str]:
    try:
        names = [str(n) for n in datamodule.class_names]
    except (AttributeError, OSError, UserError, RuntimeError):
        names = []
    return names if len(names) == count else [str(i) for i in range(count)]


def add_samples(result: Analysis, run, drawer: str) -> None:
    """The first test images with the predictions drawn by the task's ``drawer``, small images
    enlarged by a whole factor to about 600 pixels."""
    from cnnlab.viz.images import tensor_png

    names = getattr(run.datamodule, "class_names", None)
    grid = load(drawer)(run.module, run.datamodule.test_dataloader(), names)
    result.samples_png = tensor_png(grid, scale=max(1, 600 // grid.shape[-1]))


def analyse(checkpoint: Path | None, settings: ReportSettings) -> Analysis:
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
            load(task.analysis)(result, run, settings)
        if task.drawer:
            add_samples(result, run, task.drawer)
    except (UserError, OSError, RuntimeError) as e:
        log.warning("Test-split analysis failed: %s", e)
        result.notes.append(f"The test split could not be analysed: {e}")
    return result
