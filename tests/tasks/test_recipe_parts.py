"""Recipe ingredients, each against its definition: Mixup/CutMix soft targets and loss, the EMA
closed form, flip test-time augmentation."""

import copy

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.callbacks.ema import EMA, ema_decay_at
from cnnlab.data.mixing import batch_mixer
from cnnlab.tasks.classification import ClassificationModule


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.2, 0.0), (0.0, 1.0), (0.2, 1.0)])
def test_mixed_targets_are_distributions_and_the_loss_is_the_soft_cross_entropy(mixup, cutmix):
    torch.manual_seed(0)
    mixer = batch_mixer(10, mixup, cutmix)
    x, y = torch.rand(8, 3, 16, 16), torch.arange(8) % 10
    mixed, soft = mixer(x, y)
    assert mixed.shape == x.shape and soft.shape == (8, 10)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(8))
    assert (soft >= 0).all()
    logits = torch.randn(8, 10)
    by_hand = -(soft * logits.log_softmax(dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(F.cross_entropy(logits, soft), by_hand)


def test_no_alpha_no_mixer():
    assert batch_mixer(10) is None
    with pytest.raises(ValueError, match="mixup_alpha"):
        batch_mixer(10, mixup_alpha=-1)


def module(net=None, **kwargs) -> ClassificationModule:
    net = net or nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    return ClassificationModule(net, optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
                                num_classes=5, **kwargs)  # fmt: skip


def test_a_mixed_training_step_uses_soft_targets():
    torch.manual_seed(0)
    m = module(mixup_alpha=0.4)
    loss = m.training_step((torch.rand(6, 3, 4, 4), torch.arange(6) % 5), 0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert m.train_acc.update_count == 1  # the soft targets were counted by their larger share


class Halves(nn.Module):
    """Logits from column sums: a mirror changes nothing when ``symmetric`` (each class adds
    a column and its mirror column), and everything when the left half weighs more."""

    def __init__(self, symmetric: bool) -> None:
        super().__init__()
        self.symmetric = symmetric

    def forward(self, x):
        cols = x.sum(dim=(1, 2))  # (B, W)
        return cols + cols.flip(-1) if self.symmetric else cols * torch.tensor([3.0, 2, 0, 0])


def test_flip_tta_changes_nothing_on_a_symmetric_model_and_averages_otherwise():
    x, y = torch.rand(4, 1, 4, 4), torch.arange(4)
    for symmetric in (True, False):
        net = Halves(symmetric)
        _, plain, _ = module(net)._step((x, y))
        _, tta, _ = module(net, tta="flip")._tta_step((x, y))
        expected = (net(x).softmax(1) + net(x.flip(-1)).softmax(1)) / 2
        torch.testing.assert_close(tta.exp(), expected)
        if symmetric:
            torch.testing.assert_close(tta.exp(), plain.softmax(1))
        else:
            assert not torch.allclose(tta.exp(), plain.softmax(1))


class Steps(pl.LightningModule):
    """A toy whose weights after step k are known: w_k = k (set, not learned), BatchNorm inside."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))
        self.bn = nn.BatchNorm1d(3)

    def training_step(self, batch, batch_idx):
        return (self.w * 0).sum() + self.bn(batch[0]).sum() * 0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        with torch.no_grad():
            self.w.fill_(float(self.global_step))


@pytest.mark.parametrize("every", [1, 2])
def test_ema_after_k_steps_equals_the_closed_form(tmp_path, every):
    decay, steps = 0.9, 7
    toy = Steps()
    ema = EMA(decay=decay, every=every)
    data = torch.utils.data.DataLoader([(torch.randn(3),) for _ in range(steps * 4)], batch_size=4)
    trainer = pl.Trainer(max_steps=steps, callbacks=[ema], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    # the module's own on_train_batch_end runs after the callbacks': the EMA sees w_(k-1)
    trainer.fit(toy, data)
    expected, n = None, 0
    for k in range(1, steps + 1):
        if (k - 1) % every:  # Lightning's step index after step k is k - 1
            continue
        w = float(k - 1)
        if expected is None:
            expected = w
        else:
            d = ema_decay_at(decay, n)
            expected, n = d * expected + (1 - d) * w, n + 1
    # after fit, the averaged weights replace the trained ones
    torch.testing.assert_close(toy.w.detach(), torch.full((3,), expected))
    assert ema._average_model.module.bn.running_mean.abs().sum() > 0  # buffers copied


def test_ema_warm_up():
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10_000) == 0.999
    assert copy.copy(EMA(0.99)).decay == 0.99


def test_testing_the_best_checkpoint_uses_the_average(tmp_path):
    """trainer.test(ckpt_path=...) after fit must test the averaged weights the checkpoint's
    state_dict holds, not the trained ones kept beside them."""
    torch.manual_seed(0)
    toy = Steps()
    ema = EMA(decay=0.9)
    data = torch.utils.data.DataLoader([(torch.randn(3),) for _ in range(20)], batch_size=4)
    during = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="saved", every_n_train_steps=5)
    trainer = pl.Trainer(max_steps=5, callbacks=[ema, during], logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(toy, data)  # saved at step 5, before the average replaces the trained weights
    path = tmp_path / "saved.ckpt"
    saved = torch.load(path, weights_only=True)
    assert not torch.equal(saved["state_dict"]["w"], saved["current_model_state"]["w"])
    toy.test_step = lambda batch, batch_idx: None
    trainer.test(toy, data, ckpt_path=path, weights_only=True)
    torch.testing.assert_close(toy.w.detach(), saved["state_dict"]["w"])
