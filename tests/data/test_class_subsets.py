"""data.classes and data.samples_per_class: one implementation in the base datamodule."""

import logging

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from cnnlab.data.digits import DigitsDataModule
from cnnlab.data.fake import FakeDataModule
from cnnlab.data.imagefolder import ImageFolderDataModule
from cnnlab.data.subset import dataset_labels
from cnnlab.data.torchvision_sets import CIFAR10DataModule
from cnnlab.errors import UserError

from datafiles import CLASSES, make_tree


def digits(**kwargs) -> DigitsDataModule:
    dm = DigitsDataModule(augment=False, **kwargs)
    dm.setup()
    return dm


def test_digit_subset_relabels_in_the_order_given():
    dm = DigitsDataModule(classes=[5, 6, 7, 8, 9])
    assert dm.class_names == ["5", "6", "7", "8", "9"] and dm.num_classes == 5  # before setup
    dm.setup()
    full = digits()
    for split, whole in (("train", full.train_set), ("val", full.val_set), ("test", full.test_set)):
        labels = getattr(dm, f"{split}_set").labels
        assert set(labels) == set(range(5)), split
        assert len(labels) == sum(1 for y in whole.labels if y >= 5), split


def test_digit_subset_images_match_their_digit():
    dm = digits(classes=[9, 5])  # order matters: 9 -> 0, 5 -> 1
    raw = load_digits()
    x = torch.tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    mean, std = dm.mean[0], dm.std[0]
    for i in (0, 7, 30):
        image, label = dm.test_set[i]
        match = [j for j in range(len(x)) if torch.allclose(image, (x[j] - mean) / std, atol=1e-5)]
        assert match and raw.target[match[0]] == [9, 5][label]


def test_few_shot_training_set_is_fixed_and_leaves_val_test_alone():
    first = digits(classes=[5, 6, 7, 8, 9], samples_per_class=10)
    assert len(first.train_set) == 50
    assert [first.train_set.labels.count(c) for c in range(5)] == [10] * 5
    again = digits(classes=[5, 6, 7, 8, 9], samples_per_class=10)
    assert again.train_set.indices == first.train_set.indices
    other = digits(classes=[5, 6, 7, 8, 9], samples_per_class=10, split_seed=1)
    assert other.train_set.labels.count(0) == 10
    full = digits(classes=[5, 6, 7, 8, 9])
    assert len(first.val_set) == len(full.val_set) and len(first.test_set) == len(full.test_set)


def test_few_shot_alone_keeps_every_class():
    dm = digits(samples_per_class=3)
    assert dm.num_classes == 10 and len(dm.train_set) == 30
    assert len(dm.val_set) == len(digits().val_set)


def test_too_few_images_keeps_all_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="cnnlab.data.subset"):
        dm = digits(classes=[0, 1], samples_per_class=1000)
    assert len(dm.train_set) == len(digits(classes=[0, 1]).train_set)
    assert "samples_per_class=1000" in caplog.text and "class 0 has only" in caplog.text


def test_unknown_class_lists_the_names():
    with pytest.raises(UserError, match="names no class of this dataset: 10") as err:
        _ = DigitsDataModule(classes=[3, 10]).num_classes
    assert "0, 1, 2" in str(err.value)
    with pytest.raises(UserError, match="airplane, automobile"):
        _ = CIFAR10DataModule(classes=["cat", "wolf"]).class_names


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_samples_per_class(bad):
    with pytest.raises(UserError, match="samples_per_class"):
        DigitsDataModule(samples_per_class=bad)


def test_no_subset_leaves_the_datasets_as_built():
    dm = digits()
    assert type(dm.train_set).__name__ == "TensorImageDataset"


@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_fake_data_subset():
    dm = FakeDataModule(num_classes=4, train_size=80, classes=["class_3", "class_1"])
    dm.setup()
    assert dm.class_names == ["class_3", "class_1"] and dm.num_classes == 2
    full = FakeDataModule(num_classes=4, train_size=80)
    full.setup()
    original = dataset_labels(full.train_set)
    assert len(dm.train_set) == sum(y in (1, 3) for y in original)
    for i in range(len(dm.train_set)):
        assert dm.train_set[i][1] == {3: 0, 1: 1}[original[dm.train_set.indices[i]]]
    few = FakeDataModule(num_classes=4, train_size=80, samples_per_class=5)
    few.setup()
    assert sorted(few.train_set.labels) == [c for c in range(4) for _ in range(5)]


def test_imagefolder_subset(tmp_path):
    make_tree(tmp_path, per_class=5)
    dm = ImageFolderDataModule(
        root=str(tmp_path), image_size=16, classes=["fox", "cat"], samples_per_class=2
    )
    assert dm.class_names == ["fox", "cat"]
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (4, 10, 10)
    assert dm.val_set.labels == [1] * 5 + [0] * 5  # the cat images come first on disk
    folders = [dm.val_set.dataset.samples[i][1] for i in dm.val_set.indices]
    assert folders == [CLASSES.index("cat")] * 5 + [CLASSES.index("fox")] * 5
    x, y = dm.train_set[0]
    assert x.shape == (3, 16, 16) and y in (0, 1)


def test_imagefolder_subset_keeps_test_as_val_without_test_folder(tmp_path):
    make_tree(tmp_path, splits=("train",), per_class=10)
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=16, classes=["dog"])
    dm.setup()
    assert dm.test_set is dm.val_set and set(dm.val_set.labels) == {0}
