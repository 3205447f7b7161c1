"""A classifier on its test split: confusion matrix, per-class recall, precision and F1 (and
their means: balanced accuracy, macro F1), confident mistakes."""

from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlab.viz.images import to_uint8

MISTAKES = 12  # most confident wrong answers shown: two rows of six on the page


@dataclass
class Mistake:
    image: torch.Tensor  # uint8 (3, H, W), as the model saw it, unnormalised
    true: int
    predicted: int
    confidence: float  # softmax probability of the predicted class
    input: torch.Tensor | None = None  # (C, H, W) as the network took it, for Grad-CAM


@dataclass
class ClassifierResults:
    confusion: torch.Tensor  # (K, K) int64, rows the true class, columns the prediction
    mistakes: list[Mistake] = field(default_factory=list)
    images: int = 0

    @property
    def per_class_recall(self) -> torch.Tensor:
        """Recall of each class: correct / test images of that class (NaN where none)."""
        return _ratio(self.confusion.diag(), self.confusion.sum(dim=1))

    @property
    def per_class_precision(self) -> torch.Tensor:
        """Precision of each class: correct / images predicted as it (NaN where none)."""
        return _ratio(self.confusion.diag(), self.confusion.sum(dim=0))

    @property
    def per_class_f1(self) -> torch.Tensor:
        """F1 of each class, 2 TP / (2 TP + FP + FN): the harmonic mean of its precision and
        recall, 0 where either is 0 (NaN for a class neither present nor predicted)."""
        found = self.confusion.sum(dim=0) + self.confusion.sum(dim=1)  # 2 TP + FP + FN
        return _ratio(2 * self.confusion.diag(), found)

    @property
    def accuracy(self) -> float:
        return float(self.confusion.diag().sum() / max(self.images, 1))

    @property
    def balanced_accuracy(self) -> float:
        """The mean of the per-class recalls, as torchmetrics averages them (test/balanced_acc):
        over the classes that are present or predicted, a predicted but absent class
        counting 0."""
        return self._macro(self.per_class_recall)

    @property
    def macro_f1(self) -> float:
        """The mean of the per-class F1 scores, as torchmetrics averages them (test/f1_macro)."""
        return self._macro(self.per_class_f1)

    def _macro(self, per_class: torch.Tensor) -> float:
        seen = (self.confusion.sum(dim=0) + self.confusion.sum(dim=1)) > 0
        return float(per_class.nan_to_num(0.0)[seen].mean()) if seen.any() else float("nan")


def _ratio(count: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """count / total as float64, NaN where total is 0."""
    total = total.double()
    return count.double() / total.where(total > 0, torch.nan)


def normalisation(datamodule) -> tuple[list[float] | None, list[float] | None]:
    """The mean and std the datamodule's images were normalised with, or (None, None) where it
    does not say (the pictures are then stretched to their own range)."""
    stats = getattr(datamodule, "_stats", None)
    return stats() if callable(stats) else (None, None)


@torch.inference_mode()
def classify_test_split(
    net: nn.Module, loader, num_classes: int, mean, std, max_images: int | None = None
) -> ClassifierResults:
    """Run ``net`` over ``loader`` (at most ``max_images`` images) and tally its answers."""
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    kept: list[Mistake] = []
    seen = 0
    for x, y in loader:
        if max_images is not None and seen >= max_images:
            break
        if max_images is not None:
            x, y = x[: max_images - seen], y[: max_images - seen]
        out = net(x)
        logits = out[0] if isinstance(out, tuple) else out
        probs = logits.float().softmax(dim=1)
        confidence, predicted = probs.max(dim=1)
        confusion += torch.bincount(
            y * num_classes + predicted, minlength=num_classes * num_classes
        ).view(num_classes, num_classes)
        wrong = (predicted != y).nonzero().flatten()
        if len(wrong):
            pictures = to_uint8(x[wrong].float(), mean, std)
            kept += [
                Mistake(
                    pictures[i], int(y[j]), int(predicted[j]), float(confidence[j]), x[j].clone()
                )
                for i, j in enumerate(wrong.tolist())
            ]
            kept = sorted(kept, key=lambda m: -m.confidence)[:MISTAKES]
        seen += len(y)
    return ClassifierResults(confusion, kept, seen)
