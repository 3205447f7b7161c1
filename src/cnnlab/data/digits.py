"""scikit-learn's handwritten digits: 1,797 real 8x8 images shipped inside scikit-learn.

Upsampled once to 32x32 (bilinear) so LeNet-5 sees the input size it was designed for, and
split train/val/test (70/15/15, stratified by class) with a fixed seed. Nothing is downloaded.
``ImbalancedDigitsDataModule`` (``data=digits_imbalanced``) thins some classes of the training
split, a bundled imbalanced set for ``data.balance``.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from cnnlab.data.classification import ClassificationDataModule
from cnnlab.errors import UserError


class TensorImageDataset(Dataset):
    """Images held in memory as one tensor (N, C, H, W), float in [0, 1] or uint8, with labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i]
        return (self.transform(x) if self.transform else x), int(self.labels[i])


class DigitsDataModule(ClassificationDataModule):
    native_channels = 1
    native_size = 32
    mean = (0.3056,)  # of the 32x32 training split, seed 0
    std = (0.3237,)
    hflip_makes_sense = False  # a mirrored 2 is not a 2
    in_memory_on_cpu = True  # 7 MB, already one array

    def __init__(self, val_fraction: float = 0.15, test_fraction: float = 0.15, **kwargs) -> None:
        super().__init__(**kwargs)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    @property
    def all_class_names(self) -> list[str]:
        return [str(d) for d in range(10)]

    def load_images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All 1,797 digits as (N, 1, 32, 32) floats in [0, 1] and their labels."""
        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # values 0..16
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
        return x, torch.tensor(digits.target)

    def _build(self, train_tf, eval_tf):
        x, y = self.load_images()
        idx = list(range(len(y)))
        held_out = self.val_fraction + self.test_fraction
        train_idx, rest = train_test_split(
            idx, test_size=held_out, stratify=y, random_state=self.split_seed
        )
        val_idx, test_idx = train_test_split(
            rest,
            test_size=self.test_fraction / held_out,
            stratify=y[rest],
            random_state=self.split_seed,
        )
        return tuple(
            TensorImageDataset(x[i], y[i], tf)
            for i, tf in ((train_idx, train_tf), (val_idx, eval_tf), (test_idx, eval_tf))
        )


class ImbalancedDigitsDataModule(DigitsDataModule):
    """The digits with an imbalanced training split, to try ``data.balance`` on: each class of
    ``rare_classes`` keeps 1 in ``imbalance`` of its training images (at least one, drawn with
    ``split_seed``), the other classes all of theirs. Validation and test stay as in
    ``DigitsDataModule`` (balanced), so ``test/acc`` and ``test/balanced_acc`` weigh every
    class alike."""

    def __init__(
        self, rare_classes: Sequence = (5, 6, 7, 8, 9), imbalance: float = 20, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.rare = [str(c) for c in rare_classes]
        unknown = [c for c in self.rare if c not in self.all_class_names]
        if unknown or not isinstance(imbalance, int | float) or imbalance < 1:
            raise UserError(
                f"data.rare_classes={self.rare} and data.imbalance={imbalance}: the rare classes "
                "must be digits 0-9 and the imbalance a number of 1 or more (the rare classes "
                "keep 1 in data.imbalance of their training images), e.g. data.imbalance=20."
            )
        self.imbalance = imbalance

    def _build(self, train_tf, eval_tf):
        train, val, test = super()._build(train_tf, eval_tf)
        keep = self._kept(train.labels)
        return TensorImageDataset(train.images[keep], train.labels[keep], train_tf), val, test

    def _kept(self, labels: torch.Tensor) -> torch.Tensor:
        """Which training images stay (bool per image): every one of the common classes, 1 in
        ``imbalance`` of each rare class, drawn with ``split_seed``."""
        generator = self.split_generator()
        keep = torch.ones(len(labels), dtype=torch.bool)
        for name in self.rare:
            where = (labels == self.all_class_names.index(name)).nonzero().flatten()
            kept = max(1, round(len(where) / self.imbalance))
            keep[where[torch.randperm(len(where), generator=generator)[kept:]]] = False
        return keep
