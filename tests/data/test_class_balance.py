"""Class imbalance on the data side: images per class counted from the labels and logged, the
imbalance warning, data.balance's class weights and its weighted draws (ordinary and in-memory
loaders), and the refusals."""

import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.utils.class_weight import compute_class_weight
from torch.utils.data import Dataset, Subset

from cnnlab.data.balance import balanced_class_weights, sample_weights
from cnnlab.data.class_counts import class_counts, imbalance_warning, log_class_counts
from cnnlab.data.digits import DigitsDataModule, ImbalancedDigitsDataModule
from cnnlab.data.imagefolder import ImageListDataset
from cnnlab.data.in_memory import InMemoryLoader
from cnnlab.data.loaders import WeightedEpochSampler
from cnnlab.data.subset import relabel
from cnnlab.errors import UserError
from cnnlab.factory import build

LABELS = [0] * 400 + [1] * 20  # 20:1


class NoImages(Dataset):
    """Labels in ``targets``; reading an item fails, so a count that decodes one fails too."""

    def __init__(self, targets: list[int]) -> None:
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        raise AssertionError("an image was read to count the labels")


class ItemsOnly(Dataset):
    """No label attribute: counting has to read the items."""

    def __getitem__(self, i: int):
        return torch.zeros(1), [2, 0, 2][i]

    def __len__(self) -> int:
        return 3


def test_counts_read_the_labels_without_reading_images():
    data = NoImages([0, 2, 2, 1, 2])
    assert class_counts(data, 4).tolist() == [1, 1, 3, 0]
    assert class_counts(Subset(data, [1, 2, 3]), 3).tolist() == [0, 1, 2]
    assert class_counts(relabel(data, [2, 0]), 2).tolist() == [3, 1]  # class subset, relabelled
    files = ImageListDataset([("missing.png", 1), ("missing.png", 0), ("gone.png", 1)])
    assert class_counts(files, 2).tolist() == [1, 2]  # ImageFolder's (path, label) samples
    assert class_counts(ItemsOnly(), 3).tolist() == [1, 0, 2]  # the last resort: the items


def test_imbalance_warning_names_both_classes_and_counts(caplog):
    names = ["cat", "dog", "fox"]
    with caplog.at_level(logging.INFO, logger="cnnlab"):
        log_class_counts(
            {"train": torch.tensor([100, 9, 40]), "val": torch.tensor([5, 5, 5])}, names
        )
    assert "Images per class, train (149): cat=100, dog=9, fox=40" in caplog.text
    assert "Images per class, val (15): cat=5, dog=5, fox=5" in caplog.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name.startswith("cnnlab.")
    text = warnings[0].getMessage()
    assert "imbalanced" in text and "class cat has 100 images and class dog has 9" in text
    assert "data.balance=sampler" in text and "data.balance=loss" in text


def test_warning_only_above_ten_to_one():
    names = ["a", "b"]
    assert imbalance_warning(torch.tensor([100, 10]), names) is None  # exactly 10 times
    assert "class a has 101 images and class b has 10" in imbalance_warning(
        torch.tensor([101, 10]), names
    )
    assert "class b has 0" in imbalance_warning(torch.tensor([3, 0]), names)


def test_datamodule_logs_every_split_and_warns_when_imbalanced(caplog):
    with caplog.at_level(logging.INFO, logger="cnnlab"):
        DigitsDataModule(augment=False).setup()
    assert "Images per class, train (1257): 0=124, 1=127" in caplog.text
    assert "Images per class, val (270)" in caplog.text
    assert "Images per class, test (270)" in caplog.text
    assert "imbalanced" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cnnlab"):
        dm = ImbalancedDigitsDataModule(augment=False)
        dm.setup()
    assert dm.train_counts.tolist() == [124, 127, 124, 128, 127, 6, 6, 6, 6, 6]
    assert len(dm.test_set) == 270  # val and test keep every class whole
    assert "The training split is imbalanced: class 3 has 128 images and class 5 has 6" in (
        caplog.text
    )


def test_balanced_class_weights_are_scikit_learns():
    labels = [0] * 10 + [1] * 30 + [2] * 60
    weights = balanced_class_weights(torch.bincount(torch.tensor(labels)))
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)  # N / (K n_c)
    assert weights.tolist() == pytest.approx(expected.tolist())
    assert weights.tolist() == pytest.approx([100 / 30, 100 / 90, 100 / 180])
    assert balanced_class_weights(torch.tensor([10, 0, 30])).tolist() == pytest.approx(
        [2.0, 0.0, 40 / 60]  # a class without images: weight 0; K counts the others
    )


def rare_share(labels: torch.Tensor) -> float:
    return float((labels == 1).double().mean())


def test_weighted_sampler_draws_both_classes_about_equally():
    labels = torch.tensor(LABELS)
    weights = sample_weights(labels, torch.bincount(labels))
    epoch = 0
    sampler = WeightedEpochSampler(weights, seed=42, epoch=lambda: epoch)
    first = list(sampler)
    assert len(first) == len(labels)  # one epoch: as many draws as images, with replacement
    assert rare_share(labels[first]) == pytest.approx(0.5, abs=0.08)  # 1/21 without weights
    assert list(sampler) == first  # the same seed and epoch draw the same indices
    sampler.skip = 64  # a resumed epoch goes on after the batches it had done
    assert list(sampler) == first[64:]
    epoch = 1
    assert list(sampler) != first


def test_in_memory_loader_draws_with_the_weights():
    labels = torch.tensor(LABELS)
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1)
    weights = sample_weights(labels, torch.bincount(labels))

    def drawn(epoch: int) -> torch.Tensor:
        loader = InMemoryLoader(
            images, labels, batch_size=64, mean=[0.0], std=[1.0], shuffle=True,
            seed=42, epoch=lambda: epoch, weights=weights,
        )  # fmt: skip
        return torch.cat([y for _, y in loader])

    first = drawn(0)
    assert len(first) == len(labels)
    assert rare_share(first) == pytest.approx(0.5, abs=0.08)
    assert torch.equal(drawn(0), first) and not torch.equal(drawn(1), first)


@pytest.mark.parametrize("in_memory", [False, True])
def test_balance_sampler_on_the_training_loader(in_memory):
    dm = ImbalancedDigitsDataModule(balance="sampler", augment=False, in_memory=in_memory)
    dm.setup()
    assert (dm.memory is not None) == in_memory
    labels = torch.cat([y for _, y in dm.train_dataloader()])
    assert len(labels) == 660
    rare = float((labels >= 5).double().mean())  # 30 of 660 images, half the classes
    assert rare == pytest.approx(0.5, abs=0.08)
    assert torch.equal(torch.cat([y for _, y in dm.val_dataloader()]).bincount()[5:],
                       dm.val_set.labels.bincount()[5:])  # fmt: skip


def test_bad_balance_names_the_key_and_the_choices():
    with pytest.raises(UserError, match="data.balance=oversample") as err:
        DigitsDataModule(balance="oversample")
    assert "none, sampler, loss" in str(err.value)


def test_balance_refused_for_detection_data():
    data = {"_target_": "cnnlab.data.shapes.NoSuchModule", "task": "detection", "balance": "loss"}
    with pytest.raises(UserError, match="data.balance=loss balances the classes of classif"):
        build.build_datamodule(OmegaConf.create(data))  # refused before anything is built
    kwargs = {"balance": "none", "batch_size": 2}
    build.check_balance_task(kwargs, "segmentation")
    assert kwargs == {"batch_size": 2}  # none is no request: dropped, not passed on
