"""Semantic segmentation: per-pixel cross-entropy, mean IoU, pixel accuracy and drawn masks."""

from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from cnnlab.data.transforms import IGNORE_INDEX
from cnnlab.models.crf import CRFSettings, dense_crf
from cnnlab.tasks.optimization import OptimizationMixin
from cnnlab.tasks.step_logging import StepLoggingMixin
from cnnlab.viz.images import image_grid, unnormalize
from cnnlab.viz.masks import mask_rows


def iou_metric(num_classes: int, average: str | None = "macro") -> MulticlassJaccardIndex:
    """IoU over the whole epoch's pixels (one confusion matrix), label 255 left out."""
    # validate_args=False: no torch.unique over each batch's labels (a GPU sync per batch)
    return MulticlassJaccardIndex(
        num_classes, average=average, ignore_index=IGNORE_INDEX, validate_args=False
    )


class SegmentationModule(OptimizationMixin, StepLoggingMixin, pl.LightningModule):
    """Trains ``net`` (images (B, 3, H, W) -> scores (B, num_classes, H, W)).

    Batches are ``(images, masks)`` with masks int64 (B, H, W); pixels labelled 255 count in
    neither the loss nor the metrics. In training a network may return ``(scores, *aux)``
    (torchvision's auxiliary classifier): the loss adds ``net.aux_weight`` times each auxiliary
    cross-entropy.

    Logged: train/loss and lr (every ``trainer.log_every_n_steps`` steps), val/loss, val/miou,
    test/loss, test/miou, test/pixel_acc and test/iou_<k> for each class k. mIoU is the mean
    over classes of TP / (TP + FP + FN) from the confusion matrix of all the epoch's pixels.
    Each validation epoch the first ``num_logged_images`` validation images (0: none) go to
    TensorBoard as ``val/predictions``, a grid of rows [image | true mask | predicted mask] in
    VOC colours. Optimizer and schedule work as in the classification module
    (OptimizationMixin); ``label_smoothing`` applies to the training loss.

    With ``crf`` (``model.crf=true``) the test predictions are the argmax of each image's
    softmax refined by DeepLab's fully connected CRF (``cnnlab.models.crf``) on the image
    itself, un-normalised back to RGB; test/loss stays the network's own.
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
        crf: CRFSettings | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.init_optimization(optimizer, scheduler, decay_norm_and_bias, backbone_lr_scale)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.num_logged_images = num_logged_images
        self.crf = crf
        self._shown: list[torch.Tensor] = []  # this epoch's drawn validation tiles, 3 an image
        self.val_miou, self.test_miou = iou_metric(num_classes), iou_metric(num_classes)
        loss = MeanMetric(nan_strategy="disable")  # weighted by batch size; no NaN check sync
        self.val_loss, self.test_loss = loss.clone(), loss.clone()
        self.test_class_iou = iou_metric(num_classes, average="none")
        self.test_pixel_acc = MulticlassAccuracy(
            num_classes, average="micro", ignore_index=IGNORE_INDEX, validate_args=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, label_smoothing: float = 0.0):
        images, masks = batch
        out = self(images)
        scores, *aux = out if isinstance(out, tuple) else (out,)
        loss = self._pixel_loss(scores, masks, label_smoothing)
        if aux:
            weight = getattr(self.net, "aux_weight", 0.0)
            loss = loss + weight * sum(self._pixel_loss(a, masks, label_smoothing) for a in aux)
        return loss, scores, masks

    @staticmethod
    def _pixel_loss(scores, masks, label_smoothing: float) -> torch.Tensor:
        return F.cross_entropy(
            scores, masks, ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing
        )

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._step(batch, self.label_smoothing)
        self.log_train_step({"train/loss": loss}, batch_idx)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, scores, masks = self._step(batch)
        preds = scores.argmax(dim=1)
        self.val_miou.update(preds, masks)
        self.val_loss.update(loss, weight=len(masks))
        self.log_epoch_metric("val/loss", self.val_loss, batch_idx, prog_bar=True)
        self.log_epoch_metric("val/miou", self.val_miou, batch_idx, prog_bar=True)
        wanted = self.num_logged_images - len(self._shown) // 3
        if wanted > 0 and not self.trainer.sanity_checking:
            images = unnormalize(batch[0][:wanted])
            self._shown += mask_rows(images, masks[:wanted], preds[:wanted])

    def on_validation_epoch_end(self) -> None:
        shown, self._shown = self._shown, []
        if not shown:
            return
        grid = image_grid(shown, columns=3)  # one row per image
        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/predictions", grid, global_step=self.global_step)

    def test_step(self, batch, batch_idx: int) -> None:
        loss, scores, masks = self._step(batch)
        preds = scores.argmax(dim=1) if self.crf is None else self._crf_preds(batch[0], scores)
        for metric in (self.test_miou, self.test_pixel_acc, self.test_class_iou):
            metric.update(preds, masks)
        self.test_loss.update(loss, weight=len(masks))
        self.log_epoch_metric("test/loss", self.test_loss, batch_idx)
        self.log_epoch_metric("test/miou", self.test_miou, batch_idx)
        self.log_epoch_metric("test/pixel_acc", self.test_pixel_acc, batch_idx)

    def _crf_preds(self, images: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Class ids (B, H, W) from each image's CRF-refined softmax. The scores already have
        the images' size: the loss compares them with masks of that size."""
        pictures = unnormalize(images)  # uint8 (B, 3, H, W) on the CPU: what the network saw
        probs = scores.float().softmax(dim=1)
        refined = [dense_crf(p, q, self.crf) for p, q in zip(pictures, probs, strict=True)]
        return torch.stack(refined).argmax(dim=1)

    def on_test_epoch_end(self) -> None:
        for k, iou in enumerate(self.test_class_iou.compute()):
            self.log(f"test/iou_{k}", iou, sync_dist=True)  # equal on every rank after compute()
        self.test_class_iou.reset()
