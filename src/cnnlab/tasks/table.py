"""The table of tasks: everything cnnlab needs to know about a task, in one place.

A task is what a data config names (``data.task``) and what a model family declares (``TASK``
in its file). Whoever asks "which task?" (the factory choosing a LightningModule, the configs
choosing what the best checkpoint is ranked by, predict writing its files, the report and the
comparison drawing their pictures) reads its row here. Code is named by dotted path, loaded
when used (``load``), so that reading the table imports neither Lightning nor the drawing code.

Adding a task is adding a row (docs/extending.md has the steps).
"""

import importlib
from dataclasses import dataclass, field

from cnnlab.errors import UserError


@dataclass(frozen=True)
class Task:
    name: str
    module: str  # the LightningModule that trains it
    monitor: str  # the validation metric the best checkpoint is chosen by ...
    mode: str  # ... and whether higher ("max") or lower ("min") is better
    short: str  # the monitor's name in the best checkpoint's file name
    data: str  # the bundled data config that runs on a fresh machine
    headline: str  # the test metric a run is summed up by (report card, metrics.json)
    metrics: tuple[str, ...]  # the names its module logs besides train/loss and lr (the contract)
    curves: tuple[str, tuple[str, ...]]  # the report's panel of this task: title, tags
    predictor: str  # (net, images, out_dir, datamodule, names, settings) -> rows, files written
    drawer: str | None = None  # (module, loader, names) -> uint8 grid of drawn test predictions
    drawn: str = ""  # what the drawer's pictures show, for the report
    analysis: str | None = None  # the report's test-split sections (result, restored, settings)
    recipe: dict[str, str] = field(default_factory=dict)  # recipe key -> "data.KW" / "module.KW"
    finetune: bool = False  # takes finetune=... strategies (a classifier head to replace)
    image_mode: str = "RGB"  # how predict reads pictures: "RGB", or "channels" (L for 1 channel)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            name="classification",
            module="cnnlab.tasks.classification.ClassificationModule",
            monitor="val/acc",
            mode="max",
            short="acc",
            data="digits",
            headline="test/acc",
            # test/acc_top5 where there are more than five classes; besides these, per class by
            # class name: test/recall_<name> (e.g. test/recall_cat)
            metrics=(
                "train/acc",
                "val/loss",
                "val/acc",
                "test/loss",
                "test/acc",
                "test/acc_top5",
                "test/balanced_acc",
                "test/f1_macro",
            ),
            curves=("accuracy", ("train/acc", "val/acc")),
            predictor="cnnlab.inference.classification.classify_images",
            analysis="cnnlab.report.classification.add_classification",
            recipe={
                "augment": "data.augment_policy",
                "random_erasing": "data.random_erasing",
                "mixup_alpha": "module.mixup_alpha",
                "cutmix_alpha": "module.cutmix_alpha",
                "tta": "module.tta",
            },
            finetune=True,
            image_mode="channels",
        ),
        Task(
            name="detection",
            module="cnnlab.tasks.detection.DetectionModule",
            monitor="val/map",
            mode="max",
            short="map",
            data="shapes_detection",
            headline="test/map",
            metrics=(
                "val/map",
                "val/map_50",
                "val/map_75",
                "test/map",
                "test/map_50",
                "test/map_75",
                "test/ms_per_image",
            ),
            curves=("mAP", ("val/map", "val/map_50", "val/map_75")),
            predictor="cnnlab.inference.detection.detect_images",
            drawer="cnnlab.viz.samples.detection_samples",
            analysis="cnnlab.report.detection.add_detection",
            drawn="true boxes in green, predicted boxes in red with their scores",
        ),
        Task(
            name="segmentation",
            module="cnnlab.tasks.segmentation.SegmentationModule",
            monitor="val/miou",
            mode="max",
            short="miou",
            data="shapes_segmentation",
            headline="test/miou",
            metrics=("val/loss", "val/miou", "test/loss", "test/miou", "test/pixel_acc"),
            curves=("mean IoU", ("val/miou",)),
            predictor="cnnlab.inference.segmentation.segment_images",
            drawer="cnnlab.viz.samples.segmentation_samples",
            drawn="each row: the image, the true mask over it, the predicted mask over it",
            analysis="cnnlab.report.segmentation.add_segmentation",
        ),
    )
}

# Recipe keys that only some tasks take, with the value that leaves each off: a task refuses
# any of them set to another value unless its row takes it.
RECIPE_OFF = {"augment": "basic", "random_erasing": 0.0, "mixup_alpha": 0.0, "cutmix_alpha": 0.0,
              "tta": "none"}  # fmt: skip


def get_task(name: str) -> Task:
    """The row of ``name``; a UserError naming the tasks there are otherwise."""
    if name not in TASKS:
        raise UserError(
            f"data.task={name!r} is not a task cnnlab knows; choose one of {', '.join(TASKS)}."
        )
    return TASKS[name]


def load(path: str):
    """The object a dotted path names (``package.module.name``), imported now."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def checkpoint_name(task: str) -> str:
    """``best-epoch007-acc0.9889`` style: no "=", so the path stays a valid Hydra override."""
    row = TASKS.get(task, TASKS["classification"])
    return f"best-epoch{{epoch:03d}}-{row.short}{{{row.monitor}:.4f}}"
