"""SegmentationModule: logged mIoU and pixel accuracy against a plain confusion matrix, and a
short run through cnnlab-train on a tiny shapes set."""

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnlab.cli.train import train
from cnnlab.errors import UserError
from cnnlab.tasks.segmentation import SegmentationModule

from composing import tiny_segmentation

K = 4


def plain_scores(preds: torch.Tensor, masks: torch.Tensor) -> tuple[float, float, list[float]]:
    """mIoU, pixel accuracy and per-class IoU from a confusion matrix, 255 left out."""
    keep = masks != 255
    conf = torch.zeros(K, K, dtype=torch.float64)
    for t, p in zip(masks[keep].tolist(), preds[keep].tolist(), strict=True):
        conf[t, p] += 1
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    iou = tp / union
    return iou.mean().item(), (tp.sum() / conf.sum()).item(), iou.tolist()


def test_logged_metrics_equal_a_confusion_matrix():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(6, K, 9, 11, generator=gen)  # the "images" are the net's scores
    masks = torch.randint(0, K, (6, 9, 11), generator=gen)
    agree = torch.rand(6, 9, 11, generator=gen) < 0.6  # make predictions better than chance
    masks[agree] = scores.argmax(1)[agree]
    masks[torch.rand(6, 9, 11, generator=gen) < 0.1] = 255
    module = SegmentationModule(nn.Identity(), optimizer=None, num_classes=K)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(TensorDataset(scores, masks), batch_size=4)
    logged = trainer.test(module, loader, verbose=False)[0]
    miou, acc, ious = plain_scores(scores.argmax(1), masks)
    assert logged["test/miou"] == pytest.approx(miou, abs=1e-5)
    assert logged["test/pixel_acc"] == pytest.approx(acc, abs=1e-5)
    assert [logged[f"test/iou_{k}"] for k in range(K)] == pytest.approx(ious, abs=1e-5)
    keep = masks != 255
    expected_loss = nn.functional.cross_entropy(scores.permute(0, 2, 3, 1)[keep], masks[keep])
    assert 0 < logged["test/loss"] == pytest.approx(expected_loss.item(), rel=0.05)


@pytest.mark.slow  # an FCN-8s epoch: ~1.2 s
def test_one_epoch_through_cnnlab_train(make_cfg, tmp_path):
    overrides = [
        *tiny_segmentation(48),
        "model=fcn8s",
    ]
    run = tmp_path / "run"
    metrics = train(make_cfg(overrides, run_dir=run))
    assert {"train/loss", "val/miou", "test/miou", "test/pixel_acc"} <= set(metrics)
    assert 0 <= metrics["test/miou"] <= 1 and 0 <= metrics["test/pixel_acc"] <= 1
    assert sorted((run / "checkpoints").glob("best-*miou*.ckpt"))


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["data=shapes_segmentation", "model=lenet"], "fcn16s, fcn32s, fcn8s"),
        (["data=shapes_detection", "model=fcn8s"], "fasterrcnn"),
        (["model=fcn8s"], "lenet.*data=shapes_segmentation is bundled"),
    ],
)
@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_a_model_of_another_task_is_refused(make_cfg, overrides, names):
    with pytest.raises(UserError, match=names):
        train(make_cfg([*overrides, "debug=fast_dev_run", "logger=none"]))
