"""Checkpoints that others give you: read with weights_only, refused when they would run code,
and every way they can fail to fit told in one paragraph."""

import pathlib

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from cnnlab.cli.eval import evaluate
from cnnlab.cli.train import train
from cnnlab.errors import UserError

from commands import explain, run_command
from composing import compose_run

TINY = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "trainer.enable_model_summary=false",
    "callbacks.tensorboard_images=null",
    "logger=csv",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> pathlib.Path:
    """last.ckpt of a real (tiny) LeNet run on the digits."""
    tmp = tmp_path_factory.mktemp("trained")
    train(compose_run(TINY, "train", tmp / "run", tmp / "data"))
    GlobalHydra.instance().clear()
    return tmp / "run" / "checkpoints" / "last.ckpt"


def evaluate_with(ckpt, tmp_path, *overrides: str) -> dict:
    cfg = compose_run([f"ckpt_path={ckpt}", *overrides], "eval", tmp_path / "eval", tmp_path)
    try:
        return evaluate(cfg)
    finally:
        GlobalHydra.instance().clear()


class Trap:
    """Unpickling this runs ``Path.touch(marker)``: the code a hostile checkpoint would run."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.slow  # the real command in a subprocess
def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(checkpoint, tmp_path):
    marker, evil = tmp_path / "marker", tmp_path / "evil.ckpt"
    payload = torch.load(checkpoint, weights_only=True)
    payload["callbacks"] = Trap(marker)
    torch.save(payload, evil)
    proc = run_command(
        "cnnlab-eval", f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path
    )
    assert proc.returncode == 2, explain(proc)
    assert "Refused to load" in proc.stdout and "could run code" in proc.stdout
    assert "last.ckpt" in proc.stdout  # what to give instead
    assert "Traceback" not in proc.stdout
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda good, bad: bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2]),
         "cut short"),
        (lambda good, bad: bad.write_text("epoch,loss\n1,0.3\n"), "not a checkpoint at all"),
        (lambda good, bad: bad.write_bytes(b""), "cut short"),
        (lambda good, bad: torch.save(torch.load(good, weights_only=True)["state_dict"], bad),
         "plain state dict"),
    ],
    ids=["truncated", "text", "empty", "state_dict_only"],
)  # fmt: skip
def test_unreadable_or_foreign_files_say_which(checkpoint, tmp_path, make, expected):
    bad = tmp_path / "given.ckpt"
    make(checkpoint, bad)
    with pytest.raises(UserError, match=expected) as caught:
        evaluate_with(bad, tmp_path)
    assert str(bad) in str(caught.value)


def test_a_checkpoint_of_another_model_names_both_and_the_fix(checkpoint, tmp_path):
    with pytest.raises(UserError, match="weights of another model") as caught:
        evaluate_with(checkpoint, tmp_path, "model=resnet20")
    message = str(caught.value)
    assert "cnnlab.models.lenet.lenet" in message and "resnet20" in message
    assert "Leave model= off" in message


def test_a_checkpoint_of_another_number_of_classes_says_both_numbers(checkpoint, tmp_path):
    with pytest.raises(UserError, match="trained for 10 classes") as caught:
        evaluate_with(checkpoint, tmp_path, "data.classes=[0,1,2]")
    assert "this run's data has 3" in str(caught.value)
    assert "finetune.weights=" in str(caught.value)


def test_resuming_with_another_number_of_classes_is_refused_before_training(checkpoint, tmp_path):
    cfg = compose_run(
        [f"ckpt_path={checkpoint}", "data.classes=[0,1,2]", "trainer.max_epochs=2"],
        "train",
        tmp_path / "resumed",
        tmp_path,
    )
    try:
        with pytest.raises(UserError, match="trained for 10 classes"):
            train(cfg)
    finally:
        GlobalHydra.instance().clear()
