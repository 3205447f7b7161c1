"""nan_guard.policy=stop|skip through the real train(cfg), with a loss made NaN at chosen
steps; and the command line's one-paragraph stop message."""

import copy
import logging
import time
from pathlib import Path

import pytest
import torch

from cnnlab.callbacks.atomic_checkpoint import AtomicCheckpointIO
from cnnlab.callbacks.nan_guard import NanGuard, NonFiniteLoss
from cnnlab.cli.train import train
from cnnlab.errors import UserError
from cnnlab.tasks.classification import ClassificationModule

from commands import explain, run_command

TINY = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=8",
    "+trainer.limit_val_batches=2",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "callbacks.tensorboard_images=null",
    "callbacks.hparams=null",
    "trainer.enable_model_summary=false",
]


@pytest.fixture
def nan_at(monkeypatch):
    """``nan_at({3, 5})``: the training loss is NaN at those global steps (0-based: the step
    being taken). Returns a record of the weights and Adam's state before and after each step."""
    record: dict[int, dict] = {}

    def arm(steps: set[int]):
        original = ClassificationModule._step

        def poisoned(self, batch, label_smoothing=0.0, class_weights=None):
            loss, logits, y = original(self, batch, label_smoothing, class_weights)
            if self.training and self.global_step in steps:
                loss = loss * float("nan")
            return loss, logits, y

        def snapshot(self):
            optimizer = self.optimizers().optimizer
            return {
                "weights": copy.deepcopy(self.net.state_dict()),
                "adam": copy.deepcopy(optimizer.state_dict()["state"]),
            }

        def before(self, batch, batch_idx):
            record[self.global_step] = {"before": snapshot(self)}

        def after(self, outputs, batch, batch_idx):
            record[self.global_step - 1]["after"] = snapshot(self)

        monkeypatch.setattr(ClassificationModule, "_step", poisoned)
        monkeypatch.setattr(ClassificationModule, "on_train_batch_start", before, raising=False)
        monkeypatch.setattr(ClassificationModule, "on_train_batch_end", after, raising=False)
        return record

    return arm


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_stop_ends_at_the_step_and_names_the_last_good_checkpoint(make_cfg, nan_at, monkeypatch):
    nan_at({5})
    # Checkpoints are written in a worker thread; a slow disk must not hide the last one.
    save = AtomicCheckpointIO.save_checkpoint

    def slow_save(self, *args, **kwargs):
        time.sleep(0.2)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", slow_save)
    cfg = make_cfg(TINY)
    with pytest.raises(NonFiniteLoss) as caught:
        train(cfg)
    message = str(caught.value)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert "became NaN at epoch 1, step 6 (nan_guard.policy=stop)" in message
    assert f"The last good checkpoint is {last}." in message
    assert "\n" not in message and isinstance(caught.value, UserError)
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 4  # the last step checkpoint before the bad step
    assert all(torch.isfinite(t).all() for t in saved["state_dict"].values())
    assert not (Path(cfg.paths.output_dir) / "metrics.json").exists()


def test_skip_leaves_weights_and_adam_untouched_and_trains_on(make_cfg, nan_at, caplog):
    record = nan_at({3, 5})
    caplog.set_level(logging.WARNING)
    metrics = train(make_cfg([*TINY, "nan_guard.policy=skip"]))
    for step in (3, 5):  # skipped: nothing moved, Adam's moments and step count included
        assert _same(record[step]["before"], record[step]["after"]), step
    assert not _same(record[4]["before"]["weights"], record[4]["after"]["weights"])
    assert metrics["global_step"] == 8  # a skipped batch still counts as a step
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert "batch skipped, no update (2 of at most 10)" in caplog.text
    assert "2 training batches were skipped" in caplog.text


def test_skip_stops_after_max_skipped(make_cfg, nan_at):
    nan_at({2, 3})
    cfg = make_cfg([*TINY, "nan_guard.policy=skip", "nan_guard.max_skipped=1"])
    with pytest.raises(NonFiniteLoss, match=r"step 4, after 1 batches skipped .*max_skipped=1"):
        train(cfg)


def test_no_guard_when_the_node_is_null(make_cfg, nan_at):
    nan_at({1})
    metrics = train(make_cfg([*TINY, "nan_guard=null"]))
    assert metrics["global_step"] == 8  # NaN weights, but nobody stopped it


def test_bad_settings_are_refused():
    with pytest.raises(UserError, match="nan_guard.policy='halt' is not a policy"):
        NanGuard("halt")
    with pytest.raises(UserError, match="max_skipped=-1"):
        NanGuard("skip", -1)


@pytest.mark.slow  # the real command in a subprocess
def test_command_line_prints_one_paragraph_and_exits_2(tmp_path):
    proc = run_command(
        "cnnlab-train",
        "optimizer.lr=1e30",  # the weights blow up within a few steps
        *TINY,
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, explain(proc)
    assert "Traceback" not in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if "The training loss became" in line]
    assert len(lines) == 1, explain(proc)
    assert "(nan_guard.policy=stop)" in lines[0] and "optimizer.lr" in lines[0]


def test_on_a_gpu_stop_reads_the_verdict_one_step_late():
    """The GPU path without a GPU: a step's loss is kept as a device tensor and read at the
    next step (or the epoch's end), so the host never waits for the step it just queued."""

    class Trainer:  # what the guard reads of a trainer
        current_epoch, global_step, checkpoint_callbacks = 0, 4, []

    guard = NanGuard("stop")
    guard._pending = (torch.tensor(float("nan")), 0, 4)  # kept by step 5's on_before_backward
    with pytest.raises(NonFiniteLoss, match="epoch 1, step 5 .*one step late"):
        guard.on_train_epoch_end(Trainer(), None)
    guard._pending = (torch.tensor(1.5), 0, 5)
    guard.on_train_epoch_end(Trainer(), None)  # a finite loss: nothing to say
    assert guard._pending is None
