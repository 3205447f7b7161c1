"""The shared part of every classification datamodule: transforms, splits, loaders."""

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from cnnlab.data.transforms import classification_transforms


class ClassificationDataModule(pl.LightningDataModule):
    """Base class: a subclass says what its images are and builds the three split datasets.

    Subclasses set ``native_channels``, ``mean``, ``std`` and implement ``class_names`` and
    ``_build(train_tf, eval_tf) -> (train, val, test)``. Everything the model needs to know
    (``num_classes``, ``in_channels``) comes from here, so nobody types it twice.
    """

    task = "classification"
    native_channels: int = 3
    native_size: int | None = 32  # None: images of many sizes (resized to image_size)
    mean: Sequence[float] = (0.5, 0.5, 0.5)
    std: Sequence[float] = (0.5, 0.5, 0.5)
    hflip_makes_sense: bool = True

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
        augment: bool = True,
        shift: int = 2,
        hflip: bool | None = None,
        split_seed: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.root = root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size or self.native_size
        self.channels = channels
        self.augment = augment
        self.shift = shift
        self.hflip = self.hflip_makes_sense if hflip is None else hflip
        self.split_seed = split_seed
        self.pin_memory = pin_memory
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    # What the model needs to know -------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return self.channels or self.native_channels

    # Splits ------------------------------------------------------------------------------
    def _build(self, train_tf, eval_tf) -> tuple[Dataset, Dataset, Dataset]:
        raise NotImplementedError

    def _stats(self) -> tuple[list[float], list[float]]:
        """Normalisation statistics for the channels the model sees (converted if asked)."""
        mean, std = list(self.mean), list(self.std)
        if self.in_channels == len(mean):
            return mean, std
        if self.in_channels == 1:
            return [sum(mean) / len(mean)], [sum(std) / len(std)]
        return mean * self.in_channels, std * self.in_channels

    def transforms(self, train: bool):
        mean, std = self._stats()
        return classification_transforms(
            train=train and self.augment,
            image_size=self.image_size,
            native_size=self.native_size,
            mean=mean,
            std=std,
            channels=self.channels if self.channels != self.native_channels else None,
            shift=self.shift,
            hflip=self.hflip,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set, self.test_set = self._build(
                self.transforms(train=True), self.transforms(train=False)
            )

    def split_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.split_seed)

    # Loaders -----------------------------------------------------------------------------
    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
