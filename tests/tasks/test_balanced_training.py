"""Class imbalance in the classifier: the test metrics that weigh every class alike
(test/balanced_acc, test/f1_macro, test/recall_<class>), data.balance=loss's class weights in
the training loss only, and both switches against none on digits made 20:1 imbalanced."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnlab.cli.train import train
from cnnlab.data.balance import balanced_class_weights
from cnnlab.factory import build
from cnnlab.tasks.classification import ClassificationModule
from cnnlab.tasks.metric_names import metric_suffixes


class Answers(nn.Module):
    """A "network" whose answer for an input is the class written in it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(x[:, 0].long(), 4).float() * 5


class Answered(pl.LightningDataModule):
    """A test split of (answer, label) pairs; class "x y" has no test images."""

    class_names = ["T-shirt/top", "cat", "dog", "x y"]

    def __init__(self, answers: list[int], labels: list[int]) -> None:
        super().__init__()
        self.data = TensorDataset(torch.tensor(answers)[:, None], torch.tensor(labels))

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=4)


def test_class_names_become_metric_names():
    names = ["T-shirt/top", "a b", "a_b", "ok", "", "été"]
    assert metric_suffixes(names) == ["T-shirt_top", "a_b", "a_b_2", "ok", "4", "été"]


def test_test_metrics_weigh_every_class_alike():
    labels = [0] * 8 + [1] * 3 + [2]
    answers = [0] * 8 + [0, 1, 1] + [0]  # the common class is always right, the rare ones less
    module = ClassificationModule(Answers(), torch.optim.SGD, num_classes=4)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    metrics = trainer.test(module, datamodule=Answered(answers, labels), verbose=False)[0]
    assert metrics["test/acc"] == pytest.approx(10 / 12)
    assert metrics["test/balanced_acc"] == pytest.approx(balanced_accuracy_score(labels, answers))
    assert metrics["test/balanced_acc"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert metrics["test/f1_macro"] == pytest.approx(f1_score(labels, answers, average="macro"))
    recall = recall_score(labels, answers, average=None)
    per_class = {k: v for k, v in metrics.items() if k.startswith("test/recall_")}
    names = ("T-shirt_top", "cat", "dog")  # no test/recall_x_y: that class has no test images
    expected = {f"test/recall_{n}": r for n, r in zip(names, recall, strict=True)}
    assert per_class == pytest.approx(expected)


def test_class_weights_weigh_the_training_loss_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    weights = torch.tensor([0.5, 1.0, 4.0])
    module = ClassificationModule(net, torch.optim.SGD, num_classes=3, class_weights=weights)
    assert "class_weights" not in module.state_dict()  # computed again from the data
    x, y = torch.randn(6, 4), torch.tensor([0, 0, 0, 1, 1, 2])
    per_image = F.cross_entropy(net(x), y, reduction="none")
    with pytest.warns(UserWarning):  # self.log outside a Trainer: nothing is logged
        trained = module.training_step((x, y), 0)
        module.validation_step((x, y), 0)
    expected = (weights[y] * per_image).sum() / weights[y].sum()
    assert trained.item() == pytest.approx(expected.item(), rel=1e-5)
    assert module.val_loss.compute().item() == pytest.approx(per_image.mean().item(), rel=1e-5)


def test_balance_loss_gives_the_module_the_training_split_weights(make_cfg):
    cfg = make_cfg(["data=digits_imbalanced", "data.balance=loss"])
    task, dm = build.build_datamodule(cfg.data)
    module = build.build_module(cfg, task, dm)
    assert dm.train_counts.tolist() == [124, 127, 124, 128, 127, 6, 6, 6, 6, 6]
    assert torch.equal(module.class_weights, balanced_class_weights(dm.train_counts))
    assert module.class_weights[5] / module.class_weights[3] == pytest.approx(128 / 6)
    # eval, predict and export (training=False) need no training split for weights they never use
    assert build.build_module(cfg, task, dm, training=False).class_weights is None
    cfg = make_cfg(["data=digits_imbalanced"])
    assert build.build_module(cfg, *build.build_datamodule(cfg.data)).class_weights is None


@pytest.mark.slow  # three five-epoch LeNet runs on 660 digits: about 1 s each
def test_either_switch_lifts_balanced_accuracy_on_imbalanced_digits(make_cfg, tmp_path):
    """Digits 5-9 keep 1 in 20 of their training images. Without balancing, five epochs of
    LeNet all but never answer them (balanced accuracy 0.48-0.49 over seeds 1-8); with either
    switch it learns them (sampler 0.82-0.90, loss 0.72-0.80 over the same seeds)."""
    balanced = {}
    for balance in ("none", "sampler", "loss"):
        overrides = ["data=digits_imbalanced", f"data.balance={balance}", "seed=1",
                     "trainer.max_epochs=5", "logger=none", "callbacks=none",
                     "trainer.enable_model_summary=false"]  # fmt: skip
        metrics = train(make_cfg(overrides, run_dir=tmp_path / balance))
        balanced[balance] = metrics["test/balanced_acc"]
        assert {f"test/recall_{d}" for d in range(10)} <= set(metrics)
    assert balanced["none"] < 0.55
    assert balanced["sampler"] > balanced["none"] + 0.15, balanced
    assert balanced["loss"] > balanced["none"] + 0.15, balanced
