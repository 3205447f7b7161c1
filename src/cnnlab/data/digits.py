"""scikit-learn's handwritten digits: 1,797 real 8x8 images shipped inside scikit-learn.

Upsampled once to 32x32 (bilinear) so LeNet-5 sees the input size it was designed for, and
split train/val/test (70/15/15, stratified by class) with a fixed seed. Nothing is downloaded.
"""

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from cnnlab.data.classification import ClassificationDataModule


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
