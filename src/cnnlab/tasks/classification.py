"""Image classification: cross-entropy, top-1 (and top-5) accuracy, per-step schedules."""

from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassRecall

from cnnlab.data.mixing import batch_mixer
from cnnlab.errors import UserError
from cnnlab.tasks.metric_names import metric_suffixes
from cnnlab.tasks.optimization import OptimizationMixin
from cnnlab.tasks.step_logging import StepLoggingMixin

TTA_MODES = ("none", "flip")


class ClassificationModule(OptimizationMixin, StepLoggingMixin, pl.LightningModule):
    """Trains ``net`` (images (B, C, H, W) -> logits (B, num_classes)).

    ``optimizer`` is a factory ``params -> torch.optim.Optimizer`` (a Hydra ``_partial_``);
    ``scheduler`` a factory ``(optimizer, total_steps=, steps_per_epoch=) -> LRScheduler``
    stepped after every optimizer step, or None for a constant rate (see OptimizationMixin).
    Logged: train/loss and lr (every ``trainer.log_every_n_steps`` steps), train/acc, val/loss,
    val/acc, test/loss, test/acc, test/acc_top5 (more than five classes); see StepLoggingMixin.
    The test also logs what weighs every class alike, however many images it has (the
    measures for imbalanced classes): test/balanced_acc (the mean of the per-class recalls),
    test/f1_macro (the mean of the per-class F1 scores) and test/recall_<class> for each class
    with test images, named by the datamodule's ``class_names`` made safe for metric names
    (``metric_names``), else by label.

    ``class_weights`` (K,), e.g. ``data.balance=loss``'s balanced weights, weighs each class in
    the training loss only: val/loss and test/loss stay unweighted, comparable between runs
    with and without weights. It is a buffer left out of checkpoints (it follows from the
    training data, and the factory computes it again whenever it builds the module).

    A network may return ``(logits, *aux_logits)`` in training (GoogLeNet's auxiliary
    classifiers): the loss adds ``net.aux_weight`` times each auxiliary cross-entropy, and the
    accuracy counts the main logits only. ``backbone_lr_scale`` (fine-tuning) gives the
    backbone's parameters that multiple of the optimizer's learning rate.

    Recipe ingredients: ``mixup_alpha`` / ``cutmix_alpha`` mix each training batch (soft
    targets; the loss is the soft cross-entropy, train/acc counts the larger share as the
    label), ``tta="flip"`` averages the class probabilities of each test image and its mirror.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable,
        scheduler: Callable | None = None,
        num_classes: int = 10,
        label_smoothing: float = 0.0,
        decay_norm_and_bias: bool = False,
        backbone_lr_scale: float = 1.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        tta: str = "none",
        class_weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.init_optimization(optimizer, scheduler, decay_norm_and_bias, backbone_lr_scale)
        self.label_smoothing = label_smoothing
        self.mixer = batch_mixer(num_classes, mixup_alpha, cutmix_alpha)
        if tta not in TTA_MODES:
            raise UserError(f"recipe.tta={tta} is not known: choose one of {', '.join(TTA_MODES)}.")
        self.tta = tta
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"{len(class_weights)} class weights for {num_classes} classes")
        self.register_buffer("class_weights", class_weights, persistent=False)
        # No argument checks in the metrics: torchmetrics counts the distinct labels of every
        # batch (torch.unique), which makes the CPU wait for the GPU at each step; the loss
        # already refuses a label out of range. A NaN loss shows as a NaN mean.
        acc = MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)
        self.train_acc, self.val_acc, self.test_acc = acc.clone(), acc.clone(), acc.clone()
        loss = MeanMetric(nan_strategy="disable")  # weighted by batch size
        self.val_loss, self.test_loss = loss.clone(), loss.clone()
        self.test_top5 = (
            MulticlassAccuracy(
                num_classes=num_classes, top_k=5, average="micro", validate_args=False
            )
            if num_classes > 5
            else None
        )
        quiet = dict(num_classes=num_classes, validate_args=False)
        self.test_balanced_acc = MulticlassAccuracy(average="macro", **quiet)
        self.test_f1 = MulticlassF1Score(average="macro", **quiet)
        self.test_recall = MulticlassRecall(average=None, zero_division=torch.nan, **quiet)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_fit_start(self) -> None:
        # One validation image (1, C, H, W): what TensorBoardLogger(log_graph=True) traces.
        val_set = getattr(self.trainer.datamodule, "val_set", None)
        if self.example_input_array is None and val_set is not None and len(val_set):
            self.example_input_array = val_set[0][0].unsqueeze(0)

    def _step(self, batch, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None):
        """Loss (cross-entropy, its classes weighed by ``class_weights`` when given), logits
        and labels of a batch."""
        x, y = batch
        out = self(x)
        logits, *aux = out if isinstance(out, tuple) else (out,)
        ce = dict(weight=class_weights, label_smoothing=label_smoothing)
        loss = F.cross_entropy(logits, y, **ce)
        if aux:
            weight = getattr(self.net, "aux_weight", 0.0)
            loss = loss + weight * sum(F.cross_entropy(a, y, **ce) for a in aux)
        return loss, logits, y

    def _tta_step(self, batch):
        """Test-time augmentation: the class probabilities of each image and its mirror image,
        averaged; returns their log (the loss is its negative log-likelihood)."""
        x, y = batch
        probs = (self(x).softmax(dim=1) + self(x.flip(-1)).softmax(dim=1)) / 2
        log_probs = probs.clamp_min(1e-12).log()
        return F.nll_loss(log_probs, y), log_probs, y

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        if self.mixer is not None:
            batch = self.mixer(*batch)  # labels become soft targets (B, K)
        loss, logits, y = self._step(batch, self.label_smoothing, self.class_weights)
        # with soft targets, a prediction counts as right when it names the larger share
        self.train_acc.update(logits.detach(), y if y.dim() == 1 else y.argmax(dim=1))
        self.log_epoch_metric("train/acc", self.train_acc, batch_idx, prog_bar=True)
        self.log_train_step({"train/loss": loss}, batch_idx)
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, logits, y = self._step(batch)
        self.val_loss.update(loss, weight=len(y))
        self.val_acc.update(logits, y)
        self.log_epoch_metric("val/loss", self.val_loss, batch_idx, prog_bar=True)
        self.log_epoch_metric("val/acc", self.val_acc, batch_idx, prog_bar=True)
        return logits  # for callbacks (TensorBoardImages' confusion matrix): no second forward

    def test_step(self, batch, batch_idx: int) -> None:
        loss, logits, y = self._tta_step(batch) if self.tta == "flip" else self._step(batch)
        self.test_loss.update(loss, weight=len(y))
        self.test_acc.update(logits, y)
        self.log_epoch_metric("test/loss", self.test_loss, batch_idx)
        self.log_epoch_metric("test/acc", self.test_acc, batch_idx)
        if self.test_top5 is not None:
            self.test_top5.update(logits, y)
            self.log_epoch_metric("test/acc_top5", self.test_top5, batch_idx)
        for metric in (self.test_balanced_acc, self.test_f1, self.test_recall):
            metric.update(logits, y)
        self.log_epoch_metric("test/balanced_acc", self.test_balanced_acc, batch_idx)
        self.log_epoch_metric("test/f1_macro", self.test_f1, batch_idx)

    def on_test_epoch_end(self) -> None:
        """test/recall_<class> for each class with test images (the others' recall is NaN)."""
        if not self.test_recall.update_called:
            return
        recall = self.test_recall.compute()
        self.test_recall.reset()
        names = getattr(getattr(self.trainer, "datamodule", None), "class_names", None)
        if names is None or len(names) != len(recall):
            names = [str(i) for i in range(len(recall))]
        for name, value in zip(metric_suffixes(names), recall, strict=True):
            if not torch.isnan(value):
                self.log(f"test/recall_{name}", value.float(), sync_dist=True)
