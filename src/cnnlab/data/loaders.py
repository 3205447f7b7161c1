"""The three split loaders every datamodule shares (one DataLoader recipe, shuffled for train),
and the base of the datamodules whose splits are built from files or drawn."""

import os
from collections.abc import Callable

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset


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

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        workers = self._workers()
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            pin_memory=self._on_cuda() if self.pin_memory is None else self.pin_memory,
            persistent_workers=workers > 0,
            collate_fn=type(self).collate,
        )

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
    ) -> None:
        super().__init__()
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
