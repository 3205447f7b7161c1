"""Object detection with torchvision-style detectors: summed losses, COCO mAP, drawn boxes."""

from collections.abc import Callable, Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchmetrics.detection import MeanAveragePrecision
from torchvision.utils import draw_bounding_boxes, make_grid

from cnnlab.tasks.optimization import OptimizationMixin
from cnnlab.tasks.step_logging import StepLoggingMixin

TRUE_COLOR, PRED_COLOR = "lime", "red"


def new_map_metric() -> MeanAveragePrecision:
    """COCO-style box mAP computed by pycocotools (the reference implementation)."""
    return MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")


def label_text(label: int, class_names: Sequence[str] | None) -> str:
    """The name of a detection label 1..K (0 is the background), or the number itself."""
    if class_names and 1 <= label <= len(class_names):
        return class_names[label - 1]
    return str(label)


def draw_detections(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    color: str = PRED_COLOR,
) -> torch.Tensor:
    """``image`` (C, H, W) float in [0, 1] or uint8 -> uint8 RGB (3, H, W) with the boxes drawn,
    each captioned with its class name (and score, when given)."""
    if image.dtype != torch.uint8:
        image = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8)
    image = image.cpu()
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    if len(boxes) == 0:
        return image.clone()
    captions = [label_text(int(lab), class_names) for lab in labels]
    if scores is not None:
        captions = [f"{c} {float(s):.2f}" for c, s in zip(captions, scores, strict=True)]
    return draw_bounding_boxes(
        image, boxes.detach().cpu().float(), labels=captions, colors=color, width=2
    )


def image_grid(images: list[torch.Tensor], columns: int = 4) -> torch.Tensor:
    """uint8 images of any sizes, zero-padded to the largest, as one (3, H, W) grid."""
    height = max(im.shape[1] for im in images)
    width = max(im.shape[2] for im in images)
    padded = [F.pad(im, (0, width - im.shape[2], 0, height - im.shape[1])) for im in images]
    return make_grid(torch.stack(padded), nrow=min(columns, len(padded)), padding=2)


class DetectionModule(OptimizationMixin, StepLoggingMixin, pl.LightningModule):
    """Trains a torchvision-style detector ``net``.

    Batches are ``(images, targets)``: a list of float images (3, H, W) in [0, 1] and a list of
    {"boxes": (N, 4) xyxy pixels, "labels": (N,) in 1..K, ...}. In training the net returns a
    dict of losses; in evaluation a list of {"boxes", "labels", "scores"} per image.
    Logged: train/loss (their sum), each train/loss_* and lr (every ``log_every_n_steps``
    steps), val/map, val/map_50, val/map_75, test/map, test/map_50, test/map_75 (COCO mAP,
    0..1), and each validation epoch the first ``num_logged_images`` images with true (green)
    and predicted (red, score at least ``draw_score_threshold``) boxes to TensorBoard as
    ``val/predictions``.

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
        self.val_map, self.test_map = new_map_metric(), new_map_metric()
        self._shown: list[torch.Tensor] = []  # drawn validation images of this epoch

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

    def _predict(self, batch, metric: MeanAveragePrecision):
        images, targets = batch
        preds = self.net(images)
        truth = [
            {k: t[k] for k in ("boxes", "labels", "iscrowd") if k in t} for t in targets
        ]  # iscrowd: objects the evaluation ignores (COCO crowds, VOC difficult)
        metric.update([{k: p[k] for k in ("boxes", "labels", "scores")} for p in preds], truth)
        return images, targets, preds

    def _log_map(self, stage: str, metric: MeanAveragePrecision) -> None:
        result = metric.compute()
        for key in ("map", "map_50", "map_75"):
            self.log(
                f"{stage}/{key}", result[key].float(), prog_bar=key == "map", sync_dist=True
            )  # compute() gathered all ranks already: sync_dist only quiets the DDP warning
        metric.reset()

    def validation_step(self, batch, batch_idx: int) -> None:
        images, targets, preds = self._predict(batch, self.val_map)
        if self.trainer.sanity_checking:
            return
        for image, target, pred in zip(images, targets, preds, strict=True):
            if len(self._shown) >= self.num_logged_images:
                break
            self._shown.append(self._draw(image, target, pred))

    def on_validation_epoch_end(self) -> None:
        self._log_map("val", self.val_map)
        shown, self._shown = self._shown, []
        if not shown:
            return
        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(
                    "val/predictions", image_grid(shown), global_step=self.global_step
                )

    def test_step(self, batch, batch_idx: int) -> None:
        self._predict(batch, self.test_map)

    def on_test_epoch_end(self) -> None:
        self._log_map("test", self.test_map)

    def _draw(self, image: torch.Tensor, target: dict, pred: dict) -> torch.Tensor:
        names = getattr(getattr(self.trainer, "datamodule", None), "class_names", None)
        drawn = draw_detections(image, target["boxes"], target["labels"], None, names, TRUE_COLOR)
        keep = pred["scores"] >= self.draw_score_threshold
        return draw_detections(
            drawn, pred["boxes"][keep], pred["labels"][keep], pred["scores"][keep], names
        )
