"""Label-based views of a classification dataset: a class subset, few-shot draws, splits.

Labels are read without decoding images wherever the dataset keeps them (``labels``,
``targets``, ``samples``, through ``Subset`` views); only a dataset without any of those is
iterated, with its transform switched off.
"""

import copy
import logging
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset, Subset

from cnnlab.errors import UserError

log = logging.getLogger(__name__)


def dataset_labels(dataset: Dataset) -> list[int]:
    """The class index of every item of ``dataset``, in order."""
    if isinstance(dataset, Subset):
        base = dataset_labels(dataset.dataset)
        return [base[i] for i in dataset.indices]
    for attr in ("labels", "targets"):
        labels = getattr(dataset, attr, None)
        if labels is not None:
            return [int(y) for y in labels]
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, list) and all(isinstance(s, tuple) and len(s) == 2 for s in samples):
        return [int(target) for _, target in samples]
    plain = copy.copy(dataset)  # the last resort: read every item, images undecoded if we can
    if hasattr(plain, "transform"):
        plain.transform = None
    return [int(plain[i][1]) for i in range(len(plain))]


def resolve_classes(wanted: Sequence, names: Sequence[str]) -> list[int]:
    """The dataset labels of the class names in ``wanted`` (matched as strings), in its order."""
    index = {name: i for i, name in enumerate(names)}
    wanted = [str(w) for w in wanted]
    unknown = [w for w in wanted if w not in index]
    if unknown or not wanted or len(set(wanted)) != len(wanted):
        problem = (
            f"names no class of this dataset: {', '.join(unknown)}"
            if unknown
            else "must list each class once and at least one class"
        )
        raise UserError(
            f"data.classes={wanted} {problem}. The available class names are: "
            f"{', '.join(names)}. Set data.classes to a list of some of them, or null for all."
        )
    return [index[w] for w in wanted]


def few_shot_indices(
    labels: Sequence[int],
    per_class: int,
    classes: Sequence[int],
    generator: torch.Generator,
    names: Sequence[str] | None = None,
) -> list[int]:
    """``per_class`` positions of each class in ``labels``, drawn with ``generator``, sorted.

    Each class's positions are shuffled once and the first ``per_class`` kept, so with the same
    seed a smaller draw is part of a larger one. A class with fewer images keeps them all.
    """
    kept: list[int] = []
    for c in classes:
        positions = [i for i, y in enumerate(labels) if y == c]
        if len(positions) < per_class:
            log.warning(
                "data.samples_per_class=%d, but class %s has only %d training images: "
                "keeping all of them",
                per_class,
                names[c] if names else c,
                len(positions),
            )
        order = torch.randperm(len(positions), generator=generator).tolist()
        kept.extend(positions[j] for j in order[:per_class])
    return sorted(kept)


def stratified_split(
    labels: Sequence[int], fractions: Sequence[float], generator: torch.Generator
) -> list[list[int]]:
    """Positions of ``labels`` cut into len(fractions) + 1 parts, each class in proportion.

    ``fractions`` are the shares of the later parts (e.g. (0.1, 0.1) for 80/10/10); the first
    part takes the rest. Each part's positions come out sorted.
    """
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for c in sorted(set(labels)):
        positions = [i for i, y in enumerate(labels) if y == c]
        order = [positions[j] for j in torch.randperm(len(positions), generator=generator)]
        start = 0
        for k, share in enumerate(fractions, start=1):
            n = round(len(order) * share)
            parts[k].extend(order[start : start + n])
            start += n
        parts[0].extend(order[start:])
    return [sorted(part) for part in parts]


class RelabelledSubset(Dataset):
    """Some items of ``dataset``, their labels mapped to 0..K-1 through ``mapping``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], mapping: dict[int, int]) -> None:
        self.dataset, self.indices, self.mapping = dataset, list(indices), dict(mapping)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x, y = self.dataset[self.indices[i]]
        return x, self.mapping[int(y)]

    @property
    def labels(self) -> list[int]:
        """The new labels, read without touching an image."""
        base = dataset_labels(self.dataset)
        return [self.mapping[base[i]] for i in self.indices]


def relabel(
    dataset: Dataset,
    keep: Sequence[int],
    per_class: int | None = None,
    generator: torch.Generator | None = None,
    names: Sequence[str] | None = None,
) -> RelabelledSubset:
    """The items of ``dataset`` whose label is in ``keep`` (relabelled by position in ``keep``),
    cut to ``per_class`` per class (drawn with ``generator``) when that is set."""
    labels = dataset_labels(dataset)
    mapping = {old: new for new, old in enumerate(keep)}
    positions = [i for i, y in enumerate(labels) if y in mapping]
    if per_class is not None:
        kept_labels = [labels[i] for i in positions]
        generator = generator or torch.Generator().manual_seed(0)
        chosen = few_shot_indices(kept_labels, per_class, keep, generator, names)
        positions = [positions[j] for j in chosen]
    return RelabelledSubset(dataset, positions, mapping)
