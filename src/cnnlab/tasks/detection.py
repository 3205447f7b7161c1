"""Object detection with torchvision-style detectors: summed losses, COCO mAP, drawn boxes."""

import time
from collections.abc import Callable

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchmetrics.detection import MeanAveragePrecision

from cnnlab.data.proposals import proposal_recall
from cnnlab.tasks.optimization import OptimizationMixin
from cnnlab.tasks.step_logging import StepLoggingMixin
from cnnlab.viz.boxes import TRUE_COLOR, draw_detections, label_text
from cnnlab.viz.images import image_grid


def new_map_metric(
    per_class: bool = False,
    iou_thresholds: list[float] | None = None,
    extended_summary: bool = False,
) -> MeanAveragePrecision:
    """COCO-style box mAP computed by pycocotools (the reference implementation); ``per_class``
    adds each class's AP (``map_per_class``), ``iou_thresholds`` replaces COCO's 0.5:0.95, and
    ``extended_summary`` adds COCO's precision array (the report's precision-recall curves)."""
    return MeanAveragePrecision(
        box_format="xyxy",
        iou_type="bbox",
        backend="pycocotools",
        class_metrics=per_class,
        iou_thresholds=iou_thresholds,
        extended_summary=extended_summary,
    )


def detect(net, images: list[torch.Tensor], targets: list[dict]) -> list[dict]:
    """``net``'s detections of ``images``; a detector that classifies given regions (R-CNN,
    Fast R-CNN) gets the proposals its targets carry."""
    if targets and "proposals" in targets[0]:
        return net(images, proposals=[t["proposals"] for t in targets])
    return net(images)


class DetectionModule(OptimizationMixin, StepLoggingMixin, pl.LightningModule):
    """Trains a torchvision-style detector ``net``.

    Batches are ``(images, targets)``: a list of float images (3, H, W) in [0, 1] and a list of
    {"boxes": (N, 4) xyxy pixels, "labels": (N,) in 1..K, ...}. In training the net returns a
    dict of losses; in evaluation a list of {"boxes", "labels", "scores"} per image.
    Logged: train/loss (their sum), each train/loss_* and lr (every ``log_every_n_steps``
    steps), val/map, val/map_50, val/map_75, test/map, test/map_50, test/map_75 (COCO mAP,
    0..1), per class test/map_<name> and test/map_50_<name> (classes with true boxes in the
    test split), test/ms_per_image (the network's milliseconds a test picture, batched as the test
    loader gives them; proposals read from the cache are not counted), for detectors that
    classify given proposals val/proposal_recall_50 and val/proposal_recall_70 (the share of
    true boxes some proposal covers at that IoU), and each validation epoch the first
    ``num_logged_images`` images with true (green) and predicted (red, score at least
    ``draw_score_threshold``) boxes to TensorBoard as ``val/predictions``.

    Optimizer, schedule and ``backbone_lr_scale`` work as in the classification module
    (OptimizationMixin). ``num_classes`` (K + 1, with the background) belongs to the net;
    ``label_smoothing`` is a classification setting and is ignored here.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable,
        scheduler: Callable | None = None,
        num_classes: int = 2,
        label_smoothing: float = 0.0,
        decay_norm_and_bias: bool = False,
        backbone_lr_scale: float = 1.0,
        num_logged_images: int = 4,
        draw_score_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.net = net
        self.init_optimization(optimizer, scheduler, decay_norm_and_bias, backbone_lr_scale)
        self.num_classes = num_classes
        self.num_logged_images = num_logged_images
        self.draw_score_threshold = draw_score_threshold
        self.val_map, self.test_map = new_map_metric(), new_map_metric(per_class=True)
        self.test_map_50 = new_map_metric(per_class=True, iou_thresholds=[0.5])  # AP_50 per class
        self._shown: list[torch.Tensor] = []  # drawn validation images of this epoch
        self._recall = {0.5: [0, 0], 0.7: [0, 0]}  # proposals' found / true boxes, by IoU
        self._seconds, self._pictures = 0.0, 0  # the network's time on the test pictures

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.net(images)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self.net(images, targets)
        loss = sum(losses.values())
        size = len(images)
        values = {"train/loss": loss, **{f"train/{k}": v for k, v in losses.items()}}
        self.log_train_step(values, batch_idx, batch_size=size)
        return loss

    def _predict(self, batch, *metrics: MeanAveragePrecision):
        images, targets = batch
        start = time.perf_counter()
        preds = detect(self.net, images, targets)  # with the given proposals, if any
        if images and images[0].is_cuda:
            torch.cuda.synchronize(images[0].device)
        self._seconds += time.perf_counter() - start
        self._pictures += len(images)
        truth = [
            {k: t[k] for k in ("boxes", "labels", "iscrowd") if k in t} for t in targets
        ]  # iscrowd: objects the evaluation ignores (COCO crowds, VOC difficult)
        found = [{k: p[k] for k in ("boxes", "labels", "scores")} for p in preds]
        for metric in metrics:
            metric.update(found, truth)
        return images, targets, preds

    def _log_map(self, stage: str, metric: MeanAveragePrecision) -> dict:
        result = metric.compute()
        for key in ("map", "map_50", "map_75"):
            self.log(
                f"{stage}/{key}", result[key].float(), prog_bar=key == "map", sync_dist=True
            )  # compute() gathered all ranks already: sync_dist only quiets the DDP warning
        metric.reset()
        return result

    def _log_per_class(self, stage: str, key: str, result: dict) -> None:
        """``<stage>/<key>_<class name>`` for each class with true boxes in the split (a class
        without any has no AP: torchmetrics gives -1, which is not logged)."""
        names = getattr(getattr(self.trainer, "datamodule", None), "class_names", None)
        classes = result["classes"].flatten().tolist()
        values = result["map_per_class"].flatten()
        for label, value in zip(classes, values, strict=True):
            if float(value) >= 0:
                name = label_text(int(label), names)
                self.log(f"{stage}/{key}_{name}", value.float(), sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> list[dict[str, torch.Tensor]]:
        """The batch's predictions, returned for callbacks (TensorBoard's confusion matrix)."""
        images, targets, preds = self._predict(batch, self.val_map)
        if targets and "proposals" in targets[0]:
            self._count_recall(targets)
        if self.trainer.sanity_checking:
            return preds
        for image, target, pred in zip(images, targets, preds, strict=True):
            if len(self._shown) >= self.num_logged_images:
                break
            self._shown.append(self._draw(image, target, pred))
        return preds

    def _count_recall(self, targets: list[dict]) -> None:
        """How many true boxes the given proposals cover, at IoU 0.5 and 0.7."""
        for target in targets:
            for iou, counts in self._recall.items():
                found, total = proposal_recall(target["proposals"], target["boxes"], iou)
                counts[0] += found
                counts[1] += total

    def on_validation_epoch_start(self) -> None:
        self._recall = {0.5: [0, 0], 0.7: [0, 0]}

    def on_validation_epoch_end(self) -> None:
        self._log_map("val", self.val_map)
        for iou, (found, total) in self._recall.items():
            if total:
                value = torch.tensor(found / total, dtype=torch.float32)
                self.log(f"val/proposal_recall_{round(iou * 100)}", value, sync_dist=True)
        shown, self._shown = self._shown, []
        if not shown:
            return
        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(
                    "val/predictions", image_grid(shown), global_step=self.global_step
                )

    def on_test_epoch_start(self) -> None:
        self._seconds, self._pictures = 0.0, 0

    def test_step(self, batch, batch_idx: int) -> None:
        self._predict(batch, self.test_map, self.test_map_50)

    def on_test_epoch_end(self) -> None:
        self._log_per_class("test", "map", self._log_map("test", self.test_map))
        self._log_per_class("test", "map_50", self.test_map_50.compute())
        self.test_map_50.reset()
        if self._pictures:  # the network's own time: given proposals come from the cache
            ms = torch.tensor(1000 * self._seconds / self._pictures, dtype=torch.float32)
            self.log("test/ms_per_image", ms, sync_dist=True)

    def _draw(self, image: torch.Tensor, target: dict, pred: dict) -> torch.Tensor:
        names = getattr(getattr(self.trainer, "datamodule", None), "class_names", None)
        drawn = draw_detections(image, target["boxes"], target["labels"], None, names, TRUE_COLOR)
        keep = pred["scores"] >= self.draw_score_threshold
        return draw_detections(
            drawn, pred["boxes"][keep], pred["labels"][keep], pred["scores"][keep], names
        )
