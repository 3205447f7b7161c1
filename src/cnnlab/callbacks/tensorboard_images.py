"""TensorBoard pictures of a run: what goes in, what comes out, what is learned.

Tags of a classification run (in the first TensorBoardLogger; nothing without one):

- ``train/inputs``: the first training batch of the epoch, after augmentation, un-normalised;
- ``val/predictions``: the first validation images with their true and predicted labels;
- ``val/confusion_matrix``: over the whole validation set, as a figure;
- ``val/cam``: when ``cam`` is on, the first ``cam_images`` validation images with the Grad-CAM
  map of their predicted class over them (the family's default layer; none for a network
  without one);
- ``model/first_conv_filters``: the first convolution's weights (also once before training);
- ``weights/<name>`` and ``grads/<name>``: histograms, when ``histograms`` is on.

A detection run gets ``val/confusion_matrix`` alone (its module draws its own
``val/predictions``): classes 1..K and the background, objects missed in the background column
and false detections in the background row, at ``iou_threshold`` and ``score_threshold`` (see
``cnnlab.tasks.detection_matching``). Other tasks get nothing.

The predictions come from what ``validation_step`` returns (the logits; a detector's boxes), so
the confusion matrix costs no second forward pass; a classifier that returns nothing gets one,
under no_grad.

Drawing (matplotlib above all) takes a fixed fraction of a second an epoch: nothing on a GPU
epoch of minutes, but more than the epoch itself for LeNet on the digits. ``max_time_share``
keeps the pictures under that share of the training time: an epoch is drawn only when the time
spent drawing so far, plus the last drawing's cost, stays within the share of the time since
training started. The first epoch is always drawn (nothing is known of the cost yet), and so is
the last. The last epoch's pictures are drawn once training has ended, from what that epoch
showed (its first batch, its validation predictions, its filters): the run pays for them once,
as it pays for the test, and the last epoch trains as fast as the others.
"""

import time
from collections.abc import Callable
from contextlib import contextmanager

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn

from cnnlab.errors import UserError
from cnnlab.inference.cam import cam_layer, grad_cam
from cnnlab.models.parts import first_conv
from cnnlab.tasks.classification import ClassificationModule
from cnnlab.tasks.detection import DetectionModule
from cnnlab.tasks.detection_matching import confusion_counts
from cnnlab.viz import classification as figures
from cnnlab.viz.images import scaled_grid, to_uint8

CLASSIFICATION = (ClassificationModule,)  # every picture
DRAWN = (ClassificationModule, DetectionModule)  # detection: the confusion matrix alone


class TensorBoardImages(pl.Callback):
    """Every ``every_n_epochs`` epochs (and in the last one) writes the pictures switched on,
    skipping epochs while drawing would take more than ``max_time_share`` of the training time
    (None: never skip)."""

    def __init__(
        self,
        every_n_epochs: int = 1,
        max_time_share: float | None = 0.05,
        num_images: int = 16,
        train_batch: bool = True,
        predictions: bool = True,
        confusion_matrix: bool = True,
        filters: bool = True,
        histograms: bool = False,
        cam: bool = False,
        cam_images: int = 8,
        iou_threshold: float = 0.5,
        score_threshold: float = 0.5,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be 1 or more, got {every_n_epochs}.")
        if max_time_share is not None and not 0 < max_time_share <= 1:
            raise ValueError(f"max_time_share must be in (0, 1] or None, got {max_time_share}.")
        self.every_n_epochs = every_n_epochs
        self.max_time_share = max_time_share
        self.num_images = num_images
        self.train_batch = train_batch
        self.predictions = predictions
        self.confusion_matrix = confusion_matrix
        self.filters = filters
        self.histograms = histograms
        self.cam, self.cam_images = cam, cam_images
        self.iou_threshold, self.score_threshold = iou_threshold, score_threshold
        self._matrix: torch.Tensor | None = None  # (K, K) counts, rows true, while collecting
        self._shown: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._grads_due = False
        self._drawing: bool | None = None  # this epoch's decision, made at its start
        self._started = 0.0  # perf_counter at the start of training
        self._spent = 0.0  # seconds spent drawing since then
        self._last_cost: float | None = None  # seconds the last drawn epoch took; None: none yet
        self._epoch_cost = 0.0  # seconds spent drawing in this epoch so far
        self._deferred: list[Callable[[], None]] = []  # the last epoch's drawings, for the end

    # When and where ---------------------------------------------------------------------------
    @staticmethod
    def _writer(trainer: pl.Trainer, pl_module: pl.LightningModule, tasks=CLASSIFICATION):
        """The SummaryWriter to draw into, or None (no TensorBoard, not rank zero, a module of
        none of the ``tasks``)."""
        if not isinstance(pl_module, tasks) or not trainer.is_global_zero:
            return None
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                return logger.experiment
        return None

    def _due(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking:
            return False
        return self._scheduled(trainer) if self._drawing is None else self._drawing

    def _scheduled(self, trainer: pl.Trainer) -> bool:
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0 or self._last_epoch(trainer)

    @staticmethod
    def _last_epoch(trainer: pl.Trainer) -> bool:
        return trainer.max_epochs is not None and trainer.current_epoch == trainer.max_epochs - 1

    def _within_budget(self, trainer: pl.Trainer) -> bool:
        if self.max_time_share is None or self._last_cost is None or self._last_epoch(trainer):
            return True
        elapsed = time.perf_counter() - self._started
        return self._spent + self._last_cost <= self.max_time_share * (elapsed + self._last_cost)

    @contextmanager
    def _timed(self):
        """Counts the time inside against the budget (and as this epoch's drawing cost)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - start
            self._spent += took
            self._epoch_cost += took

    def _draw(self, trainer: pl.Trainer, drawing: Callable[[], None]) -> None:
        """Runs ``drawing`` now, or at the end of training when this is the fit's last epoch
        (``drawing`` then works on copies taken now)."""
        if trainer.state.fn == TrainerFn.FITTING and self._last_epoch(trainer):
            self._deferred.append(drawing)
            return
        with self._timed():
            drawing()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._drawing = self._scheduled(trainer) and self._within_budget(trainer)
        self._epoch_cost = 0.0

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        deferred, self._deferred = self._deferred, []
        with self._timed():
            for drawing in deferred:
                drawing()
        self._drawing = None  # a later trainer.validate() follows the schedule alone

    # Training ---------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started, self._spent, self._last_cost = time.perf_counter(), 0.0, None
        writer = self._writer(trainer, pl_module)
        if writer is not None and self.filters:  # the filters as initialised (or loaded)
            with self._timed():
                self._log_filters(writer, pl_module, trainer.global_step)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int
    ) -> None:
        if batch_idx != 0 or not self._due(trainer):
            return
        writer = self._writer(trainer, pl_module)
        if writer is None:
            return
        self._grads_due = self.histograms
        if self.train_batch:
            with self._timed():
                images = to_uint8(batch[0][: self.num_images], *_stats(trainer))
            step = trainer.global_step
            self._draw(trainer, lambda: writer.add_image("train/inputs", scaled_grid(images), step))

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer
    ) -> None:
        if not self._grads_due:  # gradients of the epoch's first step, unscaled under AMP
            return
        self._grads_due = False
        writer = self._writer(trainer, pl_module)
        for name, p in pl_module.named_parameters():
            if p.grad is not None:
                writer.add_histogram(f"grads/{name}", p.grad.detach().float(), trainer.global_step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._due(trainer) or self._writer(trainer, pl_module, DRAWN) is None:
            return
        writer = self._writer(trainer, pl_module)
        if writer is not None:
            self._draw_weights(trainer, pl_module, writer)
        self._last_cost = self._epoch_cost  # the validation pictures came before: all counted

    def _draw_weights(self, trainer: pl.Trainer, pl_module: pl.LightningModule, writer) -> None:
        """The first convolution's filters and the weights' histograms, as switched on."""
        if self.filters:
            filters = _first_conv_weight(pl_module)
            if filters is not None:
                step = trainer.global_step
                self._draw(trainer, lambda: _draw_filters(writer, filters, step))
        with self._timed():
            if self.histograms:
                for name, p in pl_module.named_parameters():
                    weight = p.detach().float()
                    writer.add_histogram(f"weights/{name}", weight, trainer.global_step)

    @staticmethod
    def _log_filters(writer, pl_module: pl.LightningModule, step: int) -> None:
        weight = _first_conv_weight(pl_module)
        if weight is not None:
            _draw_filters(writer, weight, step)

    # Validation -------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._matrix, self._shown = None, []
        if not self._due(trainer) or self._writer(trainer, pl_module, DRAWN) is None:
            return
        if isinstance(pl_module, DetectionModule):
            if self.confusion_matrix:  # classes 1..K at 0..K-1, the background last
                k = pl_module.num_classes
                self._matrix = torch.zeros(k, k, dtype=torch.long)
        elif self.predictions or self.confusion_matrix or self.cam:
            k = pl_module.val_acc.num_classes
            self._matrix = torch.zeros(k, k, dtype=torch.long, device=pl_module.device)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._matrix is None:
            return
        with self._timed():
            if isinstance(pl_module, DetectionModule):
                self._count_detections(outputs, batch)
            else:
                self._collect(pl_module, outputs, batch)

    def _collect(self, pl_module: pl.LightningModule, outputs, batch) -> None:
        x, y = batch
        if not isinstance(outputs, torch.Tensor):
            with torch.no_grad():
                outputs = pl_module(x)
        preds = outputs.argmax(dim=1)
        k = len(self._matrix)
        self._matrix += torch.bincount(y * k + preds, minlength=k * k).view(k, k)  # on device
        wanted = max(self.num_images * self.predictions, self.cam_images * self.cam)
        missing = wanted - sum(len(s[0]) for s in self._shown)
        if missing > 0:  # copies: the last epoch's are drawn after training
            x = x[:missing].to("cpu", copy=True)
            self._shown.append((x, y[:missing].cpu(), preds[:missing].cpu()))

    def _count_detections(self, preds: list[dict], batch) -> None:
        """A detector's batch into the matrix; ``preds`` is what its validation_step returns."""
        _, targets = batch
        k, iou, score = len(self._matrix), self.iou_threshold, self.score_threshold
        self._matrix += confusion_counts(preds, targets, k, iou, score)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._matrix is None:
            return
        if isinstance(pl_module, DetectionModule):
            drawing = self._detection_drawing(trainer, pl_module)
        else:
            drawing = self._classification_drawing(trainer, pl_module)
        self._matrix, self._shown = None, []
        self._draw(trainer, drawing)

    def _classification_drawing(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> Callable[[], None]:
        writer = self._writer(trainer, pl_module)
        step, epoch = trainer.global_step, trainer.current_epoch
        matrix, stats = self._matrix.cpu(), _stats(trainer)
        names = _class_names(trainer, len(matrix))
        shown = [torch.cat(parts) for parts in zip(*self._shown, strict=True)]
        layer = _default_cam_layer(pl_module) if self.cam and shown else None

        def draw() -> None:
            if self.predictions and shown:
                x, y, preds = (part[: self.num_images] for part in shown)
                true, pred = [names[i] for i in y], [names[i] for i in preds]
                grid = figures.captioned_grid(to_uint8(x, *stats), true, pred)
                writer.add_image("val/predictions", grid, step)
            if self.confusion_matrix:
                image = figures.confusion_matrix_image(matrix.numpy(), names, f"epoch {epoch}")
                writer.add_image("val/confusion_matrix", image, step)
            if layer is not None and self.cam_images > 0:
                x, _, preds = (part[: self.cam_images] for part in shown)
                heats = _grad_cams(pl_module.net, x, preds, layer, pl_module.device)
                grid = figures.cam_grid(to_uint8(x, *stats), heats, [names[i] for i in preds])
                writer.add_image("val/cam", grid, step)

        return draw

    def _detection_drawing(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> Callable[[], None]:
        writer = self._writer(trainer, pl_module, DRAWN)
        matrix, step = self._matrix, trainer.global_step
        names = [*_class_names(trainer, len(matrix) - 1, first=1), "background"]
        title = (
            f"epoch {trainer.current_epoch}, IoU>={self.iou_threshold:g}, "
            f"score>={self.score_threshold:g}"
        )

        def draw() -> None:
            counted = "objects and false detections"
            image = figures.confusion_matrix_image(matrix.numpy(), names, title, counted)
            writer.add_image("val/confusion_matrix", image, step)

        return draw


def _first_conv_weight(pl_module: pl.LightningModule) -> torch.Tensor | None:
    """A copy of the first convolution's weights, or None for a network without nn.Conv2d."""
    try:
        _, conv = first_conv(pl_module)
    except UserError:
        return None
    return conv.weight.detach().clone()


def _draw_filters(writer, weight: torch.Tensor, step: int) -> None:
    writer.add_image("model/first_conv_filters", figures.filter_grid(weight), step)


def _stats(trainer: pl.Trainer) -> tuple[list[float] | None, list[float] | None]:
    """The datamodule's normalisation (mean, std) for the channels the model sees, if it has one."""
    stats = getattr(trainer.datamodule, "_stats", None)
    return stats() if callable(stats) else (None, None)


def _class_names(trainer: pl.Trainer, k: int, first: int = 0) -> list[str]:
    """The datamodule's class names, or the label numbers (from ``first``) where it has none
    that fit."""
    names = getattr(trainer.datamodule, "class_names", None)
    if names is None or len(names) != k:
        names = range(first, first + k)
    return [str(n) for n in names]


def _default_cam_layer(pl_module: pl.LightningModule) -> nn.Module | None:
    """The layer Grad-CAM explains by default in the module's network, or None (none declared,
    as for a network without a convolution)."""
    try:
        return cam_layer(pl_module.net)[1]
    except UserError:
        return None


def _grad_cams(
    net: nn.Module, images: torch.Tensor, targets: torch.Tensor, layer: nn.Module, device
) -> torch.Tensor:
    """Grad-CAM maps (B, H, W) of ``images`` (B, C, H, W), each of its class in ``targets``.

    Validation runs under inference_mode, which shuts autograd out: the maps are computed with
    it switched off, on copies made there (an inference tensor cannot enter autograd), with
    ``net`` in evaluation mode. torch.autograd.grad leaves the parameters' .grad alone.
    """
    with torch.inference_mode(False), torch.enable_grad(), _evaluating(net):
        x = images.to(device, copy=True)
        maps = [grad_cam(net, x[i][None], int(t), layer) for i, t in enumerate(targets)]
    return torch.stack(maps).cpu()


@contextmanager
def _evaluating(net: nn.Module):
    """``net`` in evaluation mode inside; each of its modules' own mode restored after (a
    frozen part may stay in evaluation mode while the rest trains)."""
    modes = [(module, module.training) for module in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
