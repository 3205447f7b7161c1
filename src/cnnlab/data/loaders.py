"""The three split loaders every datamodule shares (one DataLoader recipe, shuffled for train),
and the base of the datamodules whose splits are built from files or drawn."""

import os
from collections.abc import Callable, Iterator

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, WeightedRandomSampler


def batches_done(trainer: pl.Trainer) -> Callable[[], int]:
    """How many training batches of the running epoch the trainer has finished: where a
    resumed epoch goes on. (Lightning fetches one batch ahead, so a loader has handed out one
    more than that while a batch is trained.)"""
    return lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed


def _training_loaders(trainer: pl.Trainer) -> list:
    loaders = trainer.train_dataloader
    if isinstance(loaders, dict):
        loaders = list(loaders.values())
    return list(loaders) if isinstance(loaders, list | tuple) else [loaders]


def restore_loader_states(trainer: pl.Trainer, states: list[dict]) -> None:
    """Hand the training loaders with ``load_state_dict`` their states from a checkpoint, in
    order, before their first batch is drawn.

    Lightning 2.6 loads them itself only when it builds the loaders after restoring its loops;
    a schedule that asks ``trainer.estimated_stepping_batches`` in ``configure_optimizers``
    makes it build them earlier, and the states stay unused. Loading twice does no harm: the
    loaders here keep a state until their next pass starts.
    """
    stateful = [x for x in _training_loaders(trainer) if callable(getattr(x, "load_state_dict", 0))]
    if len(stateful) == len(states):
        for loader, state in zip(stateful, states, strict=True):
            loader.load_state_dict(state)


class ResumableSampler(Sampler[int]):
    """A shuffled order of ``range(n)`` drawn from (``seed``, ``epoch()``), like
    ``InMemoryLoader``'s, that can start a pass after its first ``skip`` indices: a resumed
    epoch goes on with the same order where it stopped. ``len`` stays the whole epoch."""

    def __init__(self, n: int, seed: int, epoch: Callable[[], int]) -> None:
        self.n, self.seed, self.epoch = n, seed, epoch
        self.skip = 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        skip, self.skip = self.skip, 0
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch()) % 2**63)
        yield from torch.randperm(self.n, generator=g)[skip:].tolist()


class WeightedEpochSampler(WeightedRandomSampler):
    """torch's ``WeightedRandomSampler`` (``len(weights)`` draws with replacement) whose draws
    come from (``seed``, ``epoch()``) as ``ResumableSampler``'s order does: a run repeats
    exactly, every DDP rank draws the same indices, and a resumed epoch can start after its
    first ``skip`` indices. Without ``epoch`` a pass counter stands in for it."""

    def __init__(
        self, weights: torch.Tensor, seed: int, epoch: Callable[[], int] | None = None
    ) -> None:
        super().__init__(weights, num_samples=len(weights), replacement=True)
        self.seed, self.epoch = seed, epoch
        self.passes = 0
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch() if self.epoch is not None else self.passes
        self.passes += 1
        skip, self.skip = self.skip, 0
        self.generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        yield from list(super().__iter__())[skip:]


class ResumableDataLoader(DataLoader):
    """A shuffling DataLoader whose ``state_dict`` / ``load_state_dict`` (stored in Lightning's
    checkpoints) continue an epoch at the batch where it stopped, in the same order.

    ``epoch()`` is the trainer's epoch; ``done()`` how many batches of it were finished (the
    datamodule passes ``batches_done(trainer)``; without it, 0). Per-sample augmentation still
    draws from the global random state (or the workers' seeds): after a mid-epoch resume its
    draws differ from the uninterrupted run's, with the same distribution (see docs/resume.md).
    """

    def __init__(
        self,
        dataset: Dataset,
        *args,
        seed: int = 0,
        epoch: Callable[[], int] | None = None,
        done: Callable[[], int] | None = None,
        **kwargs,
    ) -> None:
        self.epoch = epoch or (lambda: 0)
        self.done = done
        self.seed = seed
        sampler = kwargs.pop("sampler", None) or ResumableSampler(len(dataset), seed, self.epoch)
        super().__init__(dataset, *args, sampler=sampler, **kwargs)
        self._pass_epoch = -1

    def __iter__(self):
        self._pass_epoch = self.epoch()
        return super().__iter__()

    def state_dict(self) -> dict[str, int]:
        done = self.done() if self.done is not None else 0
        return {"epoch": self._pass_epoch, "batches": int(done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        resumable = isinstance(self.sampler, ResumableSampler | WeightedEpochSampler)
        if int(state["epoch"]) == self.epoch() and resumable:
            self.sampler.skip = int(state["batches"]) * (self.batch_size or 1)


class SplitLoaders:
    """Mixin for a LightningDataModule with ``train_set``/``val_set``/``test_set``,
    ``batch_size``, ``num_workers`` and ``pin_memory``; ``collate`` None is torch's stacking.

    ``num_workers`` None picks from the machine: on a GPU run one process per core but one, up
    to 8; on a CPU run none (the training step already uses every core). ``pin_memory`` None
    means on for a CUDA run. Both need the trainer (attached by Lightning) to know the device;
    without one they are 0 and off."""

    collate: Callable | None = None

    def _on_cuda(self) -> bool:
        trainer = getattr(self, "trainer", None)
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def _workers(self) -> int:
        if self.num_workers is not None:
            return self.num_workers
        return min(8, (os.cpu_count() or 1) - 1) if self._on_cuda() else 0

    def _loader(
        self, dataset: Dataset, shuffle: bool, weights: torch.Tensor | None = None
    ) -> DataLoader:
        """The split's DataLoader; the shuffled one, in a one-process run with a trainer, a
        ``ResumableDataLoader`` (order from the run seed and the epoch, resumable mid-epoch).
        Under DDP Lightning puts a distributed sampler in: the plain shuffled loader then.
        ``weights`` (one per item, with ``shuffle``) draws the items with replacement in
        proportion to them instead (``WeightedEpochSampler``; under DDP Lightning wraps it)."""
        workers = self._workers()
        kwargs = dict(
            batch_size=self.batch_size,
            num_workers=workers,
            pin_memory=self._on_cuda() if self.pin_memory is None else self.pin_memory,
            persistent_workers=workers > 0,
            collate_fn=type(self).collate,
        )
        trainer = getattr(self, "trainer", None)
        if shuffle and weights is not None:
            epoch = (lambda: trainer.current_epoch) if trainer is not None else None
            kwargs["sampler"] = WeightedEpochSampler(weights, torch.initial_seed(), epoch)
        if shuffle and trainer is not None and trainer.world_size == 1:
            return ResumableDataLoader(
                dataset,
                seed=torch.initial_seed(),  # the run seed after seed_everything
                epoch=lambda: trainer.current_epoch,
                done=batches_done(trainer),
                **kwargs,
            )
        return DataLoader(dataset, shuffle=shuffle and "sampler" not in kwargs, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)


class BuiltSplits(SplitLoaders, pl.LightningDataModule):
    """Base of the detection and segmentation datamodules: the common settings, and ``setup``
    that builds the three split datasets once with ``_build(train_tf, eval_tf)``, the transforms
    coming from ``transforms(train)``; both are the subclass's."""

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 8,
        num_workers: int | None = 0,
        image_size: int | None = None,
        augment: bool = True,
        split_seed: int = 0,
        pin_memory: bool | None = False,
        color_jitter: float = 0.0,
    ) -> None:
        super().__init__()
        self.color_jitter = color_jitter  # recipe.color_jitter: training images only
        self.root = root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.augment = augment
        self.split_seed = split_seed
        self.pin_memory = pin_memory
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def transforms(self, train: bool) -> Callable:
        raise NotImplementedError

    def _build(self, train_tf, eval_tf) -> tuple[Dataset, Dataset, Dataset]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            splits = self._build(self.transforms(train=True), self.transforms(train=False))
            self.train_set, self.val_set, self.test_set = splits
