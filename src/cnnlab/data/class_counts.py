"""How many images each class has in each split, said in the log, with a warning when the
training split is so imbalanced that a classifier may learn to ignore its rare classes.

The labels come from ``dataset_labels`` (``cnnlab.data.subset``), which reads them without
decoding an image wherever the dataset keeps them (``labels``, ``targets``, ImageFolder's
``samples``, through ``Subset`` and class-subset views) and iterates the items only as the
last resort.
"""

import logging
from collections.abc import Mapping, Sequence

import torch
from torch.utils.data import Dataset

from cnnlab.data.subset import dataset_labels

log = logging.getLogger(__name__)

IMBALANCE_RATIO = 10  # largest / smallest training class above this: a warning


def class_counts(dataset: Dataset, num_classes: int) -> torch.Tensor:
    """Images of each class 0..num_classes-1 in ``dataset``, as int64 (num_classes,)."""
    labels = torch.as_tensor(dataset_labels(dataset), dtype=torch.int64)
    return torch.bincount(labels, minlength=num_classes)


def counts_text(counts: torch.Tensor, names: Sequence[str]) -> str:
    """``0=125, 1=127, ...`` in label order."""
    return ", ".join(f"{name}={int(n)}" for name, n in zip(names, counts, strict=True))


def imbalance_warning(
    counts: torch.Tensor, names: Sequence[str], ratio: float = IMBALANCE_RATIO
) -> str | None:
    """The warning for training ``counts`` whose largest class has more than ``ratio`` times the
    images of its smallest (an empty class counts as infinitely rarer), else None."""
    large, small = int(counts.argmax()), int(counts.argmin())
    if counts[large] <= ratio * counts[small]:
        return None
    return (
        f"The training split is imbalanced: class {names[large]} has {int(counts[large])} "
        f"images and class {names[small]} has {int(counts[small])}, more than {ratio:g} times "
        "fewer. A classifier may learn to ignore the rare classes: try data.balance=sampler "
        "(draw rare classes more often) or data.balance=loss (weigh them more in the loss), "
        "and watch test/balanced_acc and test/recall_<class>."
    )


def log_class_counts(counts: Mapping[str, torch.Tensor], names: Sequence[str]) -> None:
    """One line per split (keys such as ``train``, ``val``, ``test``) and, for ``train``, the
    imbalance warning."""
    for split, split_counts in counts.items():
        log.info(
            "Images per class, %s (%d): %s",
            split,
            int(split_counts.sum()),
            counts_text(split_counts, names),
        )
    warning = imbalance_warning(counts["train"], names) if "train" in counts else None
    if warning:
        log.warning(warning)
