"""The three split loaders every datamodule shares: one DataLoader recipe, shuffled for train."""

from collections.abc import Callable

from torch.utils.data import DataLoader, Dataset


class SplitLoaders:
    """Mixin for a LightningDataModule with ``train_set``/``val_set``/``test_set``,
    ``batch_size``, ``num_workers`` and ``pin_memory``; ``collate`` None is torch's stacking."""

    collate: Callable | None = None

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=type(self).collate,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
