"""One batch of train, val and test (fast_dev_run) for each dataset x model pair that fits."""

import os

import pytest
import torch
from torchvision.datasets import cifar

from cnnlab.cli.train import train
from cnnlab.models import get_model
from cnnlab.tasks.classification import ClassificationModule

from datafiles import make_tree, write_cifar, write_mnist

# data config -> extra overrides (and files to write first); every one runs with both models
DATASETS = {
    "digits": [],
    "fashion_mnist": ["data.download=false", "data.val_fraction=0.25"],
    "cifar10": ["data.download=false", "data.val_fraction=0.25", "data.num_workers=0"],
    "cifar100": ["data.download=false", "data.val_fraction=0.25", "data.num_workers=0"],
    "fake": ["data.train_size=16", "data.val_size=8", "data.test_size=8"],
    "mnist": ["data.download=false", "data.val_fraction=0.25"],
    "imagefolder": ["data.image_size=32", "data.num_workers=0"],
}


@pytest.mark.parametrize("model", ["lenet", "resnet18"])
@pytest.mark.parametrize("data", sorted(DATASETS))
def test_fast_dev_run(make_cfg, tmp_path, monkeypatch, data, model):
    root = tmp_path / "data"
    if data in ("mnist", "fashion_mnist"):
        write_mnist(root, {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[data])
    if data.startswith("cifar"):
        write_cifar(root, data, per_file=32)
        monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    overrides = [f"data={data}", f"model={model}", "debug=fast_dev_run", "data.batch_size=4"]
    if data == "imagefolder":
        make_tree(root / "pictures")
        overrides.append(f"data.root={root / 'pictures'}")
    metrics = train(make_cfg(overrides + DATASETS[data]))
    assert metrics["global_step"] == 1
    assert 0.0 <= metrics["test/acc"] <= 1.0 and torch.isfinite(torch.tensor(metrics["test/loss"]))


def test_top5_only_with_more_than_five_classes():
    net = get_model("lenet", num_classes=3, in_channels=1)
    module = ClassificationModule(net, optimizer=torch.optim.SGD, num_classes=3)
    assert module.test_top5 is None


def test_label_smoothing_changes_the_training_loss():
    torch.manual_seed(0)
    net = get_model("lenet", num_classes=10, in_channels=1)
    batch = (torch.randn(4, 1, 32, 32), torch.tensor([0, 1, 2, 3]))
    plain = ClassificationModule(net, torch.optim.SGD)._step(batch)[0]
    smooth = ClassificationModule(net, torch.optim.SGD, label_smoothing=0.1)._step(batch, 0.1)[0]
    assert not torch.isclose(plain, smooth)


def test_steps_update_metrics_without_reading_labels_back(monkeypatch):
    """torchmetrics' argument checks call torch.unique on every batch's labels, which makes the
    CPU wait for a GPU at each step; the metrics skip them and the loss still checks labels."""
    net = get_model("lenet", num_classes=10, in_channels=1)
    module = ClassificationModule(net, optimizer=torch.optim.SGD, num_classes=10)
    batch = (torch.randn(4, 1, 32, 32), torch.tensor([0, 1, 2, 9]))

    def no_unique(*args, **kwargs):
        raise AssertionError("torch.unique in a step")

    monkeypatch.setattr(torch, "unique", no_unique)
    with pytest.warns(UserWarning):  # self.log outside a Trainer: nothing is logged
        module.training_step(batch, 0)
        module.validation_step(batch, 0)
        module.test_step(batch, 0)
    assert module.train_acc.update_count == module.val_acc.update_count == 1
    with pytest.raises(IndexError):  # a label out of range is still refused
        module.training_step((batch[0], torch.tensor([0, 1, 2, 10])), 0)
