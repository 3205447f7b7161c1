"""Kill-safe checkpoint files, step checkpoints, ckpt_path=last, and the states a resume needs
(loaders, random generators, metrics), each on its own."""

import random
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torchmetrics.classification import MulticlassAccuracy

from cnnlab.callbacks.atomic_checkpoint import AtomicCheckpointIO, BackgroundCheckpointIO
from cnnlab.callbacks.checkpoints import run_checkpoints
from cnnlab.callbacks.rng_state import (
    metric_states,
    random_states,
    set_metric_states,
    set_random_states,
)
from cnnlab.data.in_memory import InMemoryLoader
from cnnlab.data.loaders import ResumableDataLoader
from cnnlab.errors import UserError
from cnnlab.factory.build import build_callbacks, build_trainer
from cnnlab.factory.resume import resolve_ckpt_path, resume_command


def test_atomic_save_replaces_the_file_and_leaves_no_temporary(tmp_path):
    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"step": 1}, target)
    io.save_checkpoint({"step": 2}, target)
    assert torch.load(target, weights_only=True) == {"step": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


def test_a_save_that_dies_midway_leaves_the_old_file_whole(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"weights": torch.arange(1000)}, target)
    before = target.read_bytes()

    def half_then_die(obj, f, *args, **kwargs):
        f.write(before[: len(before) // 2])  # what a killed writer leaves
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"weights": torch.zeros(1000)}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)["weights"], torch.arange(1000))


def test_leftovers_of_a_killed_save_go_with_the_next_save(tmp_path):
    (tmp_path / ".last.ckpt.123.abcd1234.tmp").write_bytes(b"half")
    AtomicCheckpointIO().save_checkpoint({"step": 3}, tmp_path / "last.ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_the_trainer_saves_through_the_atomic_plugin_in_the_background(make_cfg):
    cfg = make_cfg()
    trainer = build_trainer(cfg.trainer, [], [])
    io = trainer.strategy.checkpoint_io
    assert isinstance(io, BackgroundCheckpointIO)
    assert isinstance(io.checkpoint_io, AtomicCheckpointIO)


class SlowAtomicIO(AtomicCheckpointIO):
    """Each save waits for ``go`` first, so a test can look while saves are queued."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        assert self.go.wait(timeout=30)
        super().save_checkpoint(checkpoint, path, storage_options)


def test_background_saves_snapshot_the_tensors_and_remove_only_after_saving(tmp_path):
    slow = SlowAtomicIO()
    io = BackgroundCheckpointIO(slow)
    old_best, new_best = tmp_path / "best-1.ckpt", tmp_path / "best-2.ckpt"
    AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(3)}, old_best)
    weights = torch.ones(3)
    io.save_checkpoint({"w": weights}, new_best)
    io.remove_checkpoint(old_best)  # as ModelCheckpoint does right after saving the new best
    weights.mul_(7)  # training goes on and changes the tensors in place
    assert old_best.is_file() and not new_best.exists()  # the removal waits behind the save
    slow.go.set()
    io.wait()
    assert not old_best.exists()
    assert torch.equal(torch.load(new_best, weights_only=True)["w"], torch.ones(3))
    io.teardown()


def test_a_load_waits_for_the_save_queued_before_it(tmp_path):
    slow = SlowAtomicIO()
    io = BackgroundCheckpointIO(slow)
    io.save_checkpoint({"step": 5}, tmp_path / "last.ckpt")
    threading.Timer(0.2, slow.go.set).start()
    assert io.load_checkpoint(tmp_path / "last.ckpt")["step"] == 5
    io.teardown()


def test_a_failed_background_save_is_raised_at_teardown(tmp_path):
    io = BackgroundCheckpointIO()
    (tmp_path / "file").write_text("not a folder")
    io.save_checkpoint({"step": 1}, tmp_path / "file" / "last.ckpt")
    with pytest.raises(OSError):
        io.teardown()


def _by_kind(callbacks) -> tuple[list, list]:
    checkpoints = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    best = [c for c in checkpoints if c.monitor]
    last = [c for c in checkpoints if not c.monitor]
    return best, last


def test_default_checkpoints_best_and_last_per_epoch(make_cfg):
    cfg = make_cfg()
    best, last = _by_kind(build_callbacks(cfg.callbacks))
    assert len(best) == 1 and best[0].monitor == "val/acc"
    assert best[0].filename == "best-epoch{epoch:03d}-acc{val/acc:.4f}"
    assert [c.filename for c in last] == ["last"]
    assert last[0].every_n_epochs == 1 and last[0]._every_n_train_steps == 0


def test_every_n_train_steps_adds_step_refreshes_of_last(make_cfg):
    cfg = make_cfg(["callbacks.model_checkpoint.every_n_train_steps=5"])
    best, last = _by_kind(build_callbacks(cfg.callbacks))
    assert best[0].every_n_epochs == 1 and best[0]._every_n_train_steps == 0  # per epoch still
    assert [c.filename for c in last] == ["last", "last"]
    assert sorted(c._every_n_train_steps for c in last) == [0, 5]
    assert len({c.state_key for c in last}) == 2  # their states do not overwrite each other


def test_run_checkpoints_refuses_a_fractional_step_count(tmp_path):
    with pytest.raises(ValueError, match="whole number"):
        run_checkpoints(str(tmp_path), "best", "val/acc", every_n_train_steps=2.5)


def test_ckpt_path_last_is_the_run_folders_last_checkpoint(tmp_path):
    with pytest.raises(UserError, match="holds no checkpoints/last.ckpt.*hydra.run.dir"):
        resolve_ckpt_path("last", str(tmp_path))
    nested = tmp_path / "0" / "checkpoints" / "last.ckpt"
    nested.parent.mkdir(parents=True)
    nested.write_bytes(b"x")
    assert resolve_ckpt_path("last", str(tmp_path)) == str(nested)
    usual = tmp_path / "checkpoints" / "last.ckpt"
    usual.parent.mkdir()
    usual.write_bytes(b"x")
    assert resolve_ckpt_path("last", str(tmp_path)) == str(usual)
    assert resolve_ckpt_path("some/other.ckpt", str(tmp_path)) == "some/other.ckpt"


def test_resume_command_repeats_the_overrides(make_cfg, tmp_path):
    make_cfg(["optimizer.lr=0.01", "data.batch_size=32"], run_dir=tmp_path / "my run")
    command = resume_command(str(tmp_path / "my run"), "cnnlab-train")
    assert command.startswith("cnnlab-train optimizer.lr=0.01 data.batch_size=32 ")
    assert command.endswith(f"'hydra.run.dir={tmp_path / 'my run'}' ckpt_path=last")


def _loader(**kwargs) -> InMemoryLoader:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8, generator=g)
    return InMemoryLoader(
        images, torch.arange(50), batch_size=8, mean=[0.5], std=[0.5], shuffle=True,
        augment=True, shift=2, seed=3, **kwargs,
    )  # fmt: skip


def test_in_memory_loader_resumes_inside_an_epoch():
    epoch = {"now": 1}
    first = _loader(epoch=lambda: epoch["now"])
    batches = list(first)
    assert first.state_dict() == {"epoch": 1, "batches": 7}  # 50 images, batches of 8

    it = iter(first)
    for _ in range(3):
        next(it)
    state = first.state_dict()
    assert state == {"epoch": 1, "batches": 3}

    again = _loader(epoch=lambda: epoch["now"])  # a new process
    again.load_state_dict(state)
    rest = list(again)
    assert len(rest) == 4
    for (x, y), (x0, y0) in zip(rest, batches[3:], strict=True):
        assert torch.equal(x, x0) and torch.equal(y, y0)
    assert len(list(again)) == 7  # the next pass is whole again


def test_in_memory_loader_counts_what_the_consumer_finished():
    done = {"n": 2}
    loader = _loader(epoch=lambda: 0, done=lambda: done["n"])
    it = iter(loader)
    for _ in range(3):  # one fetched ahead
        next(it)
    assert loader.state_dict() == {"epoch": 0, "batches": 2}


def test_a_state_of_another_epoch_starts_the_pass_at_its_beginning():
    loader = _loader(epoch=lambda: 2)
    loader.load_state_dict({"epoch": 1, "batches": 5})
    assert len(list(loader)) == 7


def test_resumable_dataloader_goes_on_in_the_same_order():
    data = torch.utils.data.TensorDataset(torch.arange(30))
    epoch = {"now": 4}
    first = ResumableDataLoader(data, batch_size=4, seed=7, epoch=lambda: epoch["now"])
    order = torch.cat([b[0] for b in first])
    assert sorted(order.tolist()) == list(range(30))
    again = ResumableDataLoader(data, batch_size=4, seed=7, epoch=lambda: epoch["now"])
    again.load_state_dict({"epoch": 4, "batches": 3})
    assert torch.equal(torch.cat([b[0] for b in again]), order[12:])
    epoch["now"] = 5
    assert not torch.equal(torch.cat([b[0] for b in first]), order)  # a new epoch, a new order


def test_random_states_round_trip_as_plain_values(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    states = random_states()
    path = tmp_path / "rng.pt"
    torch.save(states, path)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()  # move them all on
    set_random_states(torch.load(path, weights_only=True))  # weights_only reads them
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_running_metric_state_round_trips(tmp_path):
    module = torch.nn.Module()
    module.acc = MulticlassAccuracy(num_classes=3, average="micro")
    module.acc.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    path = tmp_path / "metrics.pt"
    torch.save(metric_states(module), path)
    other = torch.nn.Module()
    other.acc = MulticlassAccuracy(num_classes=3, average="micro")
    set_metric_states(other, torch.load(path, weights_only=True))
    other.acc.update(torch.tensor([1]), torch.tensor([1]))
    assert other.acc.compute() == pytest.approx(4 / 5)


def test_checkpoint_of_a_real_run_holds_the_resume_state(make_cfg, tmp_path):
    from cnnlab.cli.train import train

    cfg = make_cfg(
        [
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=4",
            "+trainer.limit_val_batches=1",
            "callbacks.model_checkpoint.every_n_train_steps=3",
            "callbacks.tensorboard_images=null",
            "trainer.enable_model_summary=false",
        ]
    )
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    assert set(checkpoint["cnnlab_resume_state"]) == {"random", "metrics"}
    assert checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 0, "batches": 4}
    ]
    assert [p.name for p in last.parent.iterdir() if p.name.startswith(".")] == []


def test_sigterm_during_validation_stops_at_the_next_training_batch(make_cfg):
    """Lightning's own SIGTERM flag would end the run inside validation with nothing saved;
    the run goes on to the next training batch, saves it and names the resume command."""
    from cnnlab.callbacks.interrupt import RunInterrupted
    from cnnlab.cli.train import train

    cfg = make_cfg(
        [
            "trainer.max_epochs=2",
            "+trainer.limit_train_batches=3",
            "+trainer.limit_val_batches=2",
            "+trainer.num_sanity_val_steps=2",
            "callbacks.tensorboard_images=null",
            "trainer.enable_model_summary=false",
            "+callbacks.sigterm._target_=probes.SigtermInValidation",
        ]
    )
    with pytest.raises(RunInterrupted, match="stopped by SIGTERM at epoch 2, step 4"):
        train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 4
