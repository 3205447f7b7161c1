"""TensorBoard pictures of a classification run: what goes in, what comes out, what is learned.

Tags (in the first TensorBoardLogger; nothing without one, nothing for other tasks, whose
modules draw their own ``val/predictions``):

- ``train/inputs``: the first training batch of the epoch, after augmentation, un-normalised;
- ``val/predictions``: the first validation images with their true and predicted labels;
- ``val/confusion_matrix``: over the whole validation set, as a figure;
- ``model/first_conv_filters``: the first convolution's weights (also once before training);
- ``weights/<name>`` and ``grads/<name>``: histograms, when ``histograms`` is on.

The predictions come from what ``validation_step`` returns (the logits), so the confusion matrix
costs no second forward pass; a module that returns nothing gets one, under no_grad.

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

from cnnlab.errors import UserError
from cnnlab.models.parts import first_conv
from cnnlab.tasks.classification import ClassificationModule
from cnnlab.viz import classification as figures
from cnnlab.viz.images import scaled_grid, to_uint8


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
    def _writer(trainer: pl.Trainer, pl_module: pl.LightningModule):
        """The SummaryWriter to draw into, or None (no TensorBoard, not classification)."""
        if not isinstance(pl_module, ClassificationModule) or not trainer.is_global_zero:
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
        writer = self._writer(trainer, pl_module)
        if writer is None or not self._due(trainer):
            return
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
        self._last_cost = self._epoch_cost  # the validation pictures came before: all counted

    @staticmethod
    def _log_filters(writer, pl_module: pl.LightningModule, step: int) -> None:
        weight = _first_conv_weight(pl_module)
        if weight is not None:
            _draw_filters(writer, weight, step)

    # Validation -------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._matrix, self._shown = None, []
        wanted = self.predictions or self.confusion_matrix
        if wanted and self._due(trainer) and self._writer(trainer, pl_module) is not None:
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
            self._collect(pl_module, outputs, batch)

    def _collect(self, pl_module: pl.LightningModule, outputs, batch) -> None:
        x, y = batch
        if not isinstance(outputs, torch.Tensor):
            with torch.no_grad():
                outputs = pl_module(x)
        preds = outputs.argmax(dim=1)
        k = len(self._matrix)
        self._matrix += torch.bincount(y * k + preds, minlength=k * k).view(k, k)  # on device
        missing = self.num_images - sum(len(s[0]) for s in self._shown)
        if self.predictions and missing > 0:
            self._shown.append((x[:missing].cpu(), y[:missing].cpu(), preds[:missing].cpu()))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._matrix is None:
            return
        writer = self._writer(trainer, pl_module)
        step, epoch = trainer.global_step, trainer.current_epoch
        matrix, shown, stats = self._matrix.cpu(), self._shown, _stats(trainer)
        names = _class_names(trainer, len(matrix))
        self._matrix, self._shown = None, []

        def draw() -> None:
            if self.predictions and shown:
                x, y, preds = (torch.cat(parts) for parts in zip(*shown, strict=True))
                images = to_uint8(x, *stats)
                true, pred = [names[i] for i in y], [names[i] for i in preds]
                grid = figures.captioned_grid(images, true, pred)
                writer.add_image("val/predictions", grid, step)
            if self.confusion_matrix:
                image = figures.confusion_matrix_image(matrix.numpy(), names, f"epoch {epoch}")
                writer.add_image("val/confusion_matrix", image, step)

        self._draw(trainer, draw)


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


def _class_names(trainer: pl.Trainer, k: int) -> list[str]:
    """The datamodule's class names, or the label numbers where it has none that fit."""
    names = getattr(trainer.datamodule, "class_names", None)
    if names is None or len(names) != k:
        names = range(k)
    return [str(n) for n in names]
