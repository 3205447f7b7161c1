"""FakeDataModule: sizes, shapes, classes and splits that differ."""

import torch

from cnnlab.data.fake import FakeDataModule


def test_sizes_shapes_and_classes():
    dm = FakeDataModule(
        num_classes=4, image_size=16, train_size=20, val_size=8, test_size=6, batch_size=5
    )
    dm.setup()
    assert (dm.num_classes, dm.in_channels) == (4, 3)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (20, 8, 6)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (5, 3, 16, 16) and y.dtype == torch.int64
    assert all(0 <= dm.test_set[i][1] < 4 for i in range(6))


def test_splits_differ_and_are_repeatable():
    dm = FakeDataModule(augment=False)
    dm.setup()
    assert not torch.equal(dm.train_set[0][0], dm.val_set[0][0])
    assert not torch.equal(dm.val_set[0][0], dm.test_set[0][0])
    assert torch.equal(dm.val_set[3][0], dm.val_set[3][0])


def test_grey_conversion():
    dm = FakeDataModule(channels=1, image_size=8)
    dm.setup()
    assert dm.in_channels == 1 and dm.val_set[0][0].shape == (1, 8, 8)
