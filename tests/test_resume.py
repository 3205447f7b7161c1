"""A run killed at any moment and resumed with ckpt_path=last ends as if it had never stopped;
SIGTERM and Ctrl-C save the state and say how to resume (real cnnlab-train processes)."""

import json
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.cli.train import train

from commands import explain, run_command, start_command

STEPS_PER_EPOCH = 20  # 1,257 training digits in batches of 64
RUN = [
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "callbacks.model_checkpoint.every_n_train_steps=3",
    "callbacks.tensorboard_images=null",
    "callbacks.hparams=null",
    "trainer.enable_model_summary=false",
]


def start(words: list[str], cwd: Path) -> subprocess.Popen:
    """``cnnlab-train`` with these words, running on while the test watches it."""
    return start_command(words[0], *words[1:], cwd=cwd)


def saved_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def signal_when(proc: subprocess.Popen, last: Path, sig: int, wanted, timeout: float = 120) -> None:
    """Send ``sig`` as soon as ``last`` holds a step for which ``wanted(step)`` is true."""
    seen, deadline = None, time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            stamp = last.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp is not None and stamp != seen:
            seen = stamp
            if wanted(saved_step(last)):
                proc.send_signal(sig)
                return
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"the run ended before a checkpoint to act on:\n{proc.communicate()[0][-3000:]}")


def train_loss_steps(run_dir: Path) -> list[int]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return [e.step for e in events.Scalars("train/loss")]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the same run, never stopped (in-process: one import fewer)."""
    from hydra.core.global_hydra import GlobalHydra

    from composing import compose_run

    root = tmp_path_factory.mktemp("reference")
    train(compose_run(RUN, "train", root / "run", root / "data"))
    GlobalHydra.instance().clear()
    return root / "run"


def assert_same_run(resumed: Path, reference: Path) -> None:
    ours = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    theirs = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    assert ours["global_step"] == theirs["global_step"] == 2 * STEPS_PER_EPOCH
    assert ours["state_dict"].keys() == theirs["state_dict"].keys()
    for name, tensor in theirs["state_dict"].items():
        assert torch.equal(ours["state_dict"][name], tensor), name
    for ours_state, their_state in zip(
        ours["optimizer_states"][0]["state"].values(),
        theirs["optimizer_states"][0]["state"].values(),
        strict=True,
    ):
        for key, value in their_state.items():
            assert torch.equal(ours_state[key], value), key
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics == json.loads((reference / "metrics.json").read_text())


@pytest.mark.slow  # a process killed mid-epoch, then resumed: two commands
def test_sigkill_mid_epoch_then_resume_is_exact(uninterrupted, tmp_path):
    run_dir = tmp_path / "killed"
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = start(["cnnlab-train", *RUN, f"hydra.run.dir={run_dir}"], tmp_path)
    # kill in the second epoch, just after a step checkpoint
    signal_when(proc, last, signal.SIGKILL, lambda s: s > STEPS_PER_EPOCH and s % 3 == 0)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed_at = saved_step(last)
    assert STEPS_PER_EPOCH < killed_at < 2 * STEPS_PER_EPOCH, killed_at  # mid-epoch
    assert not (run_dir / "metrics.json").exists()

    words = ["cnnlab-train", *RUN, f"hydra.run.dir={run_dir}", "ckpt_path=last"]
    resumed = run_command(*words, cwd=tmp_path)
    assert resumed.returncode == 0, explain(resumed)
    assert f"step {killed_at}" in resumed.stdout
    assert_same_run(run_dir, uninterrupted)
    # the curves go on where the checkpoint stood: each step once, as in the uninterrupted run
    steps = train_loss_steps(run_dir)
    assert len(steps) == len(set(steps))
    assert steps == train_loss_steps(uninterrupted)


def compose_words(words: list[str], tmp_path: Path):
    """The config ``cnnlab-train`` composes from a command's words, its run folder included."""
    from composing import compose_run

    assert words[0] == "cnnlab-train"
    run_dir = next(w.split("=", 1)[1] for w in words if w.startswith("hydra.run.dir="))
    overrides = [w for w in words[1:] if not w.startswith("hydra.run.dir=")]
    return compose_run(overrides, "train", Path(run_dir), tmp_path / "data")


def stop_with(proc: subprocess.Popen, sig: int, name: str, last: Path, after: int) -> list[str]:
    """Send ``sig`` once ``last`` holds a step past ``after``; check the run ends with status 2,
    no traceback, and a message naming the resume command; return that command's words."""
    signal_when(proc, last, sig, lambda s: s > after)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out
    stopped_at = saved_step(last)
    assert after < stopped_at < 2 * STEPS_PER_EPOCH
    assert f"stopped by {name}" in out and f"step {stopped_at};" in out, out[-3000:]
    words = shlex.split(out.split("Resume it with: ", 1)[1].splitlines()[0].strip())
    assert words[0] == "cnnlab-train" and words[-1] == "ckpt_path=last"
    assert f"hydra.run.dir={last.parent.parent}" in words
    assert set(RUN) <= set(words)  # the same overrides
    return words


@pytest.mark.slow  # three commands, two of them stopped by a signal
def test_sigterm_and_ctrl_c_save_and_name_the_resume_command(uninterrupted, tmp_path):
    """SIGTERM in the first epoch, its resume command, Ctrl-C in the second, its resume
    command: the run still ends exactly as the uninterrupted one."""
    run_dir = tmp_path / "stopped"
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = start(["cnnlab-train", *RUN, f"hydra.run.dir={run_dir}"], tmp_path)
    words = stop_with(proc, signal.SIGTERM, "SIGTERM", last, after=0)

    proc = start(words, tmp_path)
    after = max(STEPS_PER_EPOCH, saved_step(last))  # in the second epoch
    words = stop_with(proc, signal.SIGINT, "Ctrl-C", last, after=after)

    # the second command resumed as a real process; the last one runs in-process (the same
    # words, composed as cnnlab-train composes them), one import fewer
    from hydra.core.global_hydra import GlobalHydra

    try:
        train(compose_words(words, tmp_path))
    finally:
        GlobalHydra.instance().clear()
    assert_same_run(run_dir, uninterrupted)
    steps = train_loss_steps(run_dir)
    assert len(steps) == len(set(steps))


SWEEP = [
    *RUN,
    "data.samples_per_class=30",  # 300 training digits: 5 steps an epoch, 10 a job
    "callbacks.model_checkpoint.every_n_train_steps=2",
]


@pytest.mark.slow  # a sweep killed in its second job, the same command again, a reference run
def test_a_killed_sweep_comes_back_with_the_same_command(tmp_path):
    sweep_dir = tmp_path / "sweep"
    words = ["cnnlab-train", "-m", "seed=1,2,3", *SWEEP, f"hydra.sweep.dir={sweep_dir}"]
    proc = start(words, tmp_path)
    signal_when(proc, sweep_dir / "1" / "checkpoints" / "last.ckpt", signal.SIGKILL,
                lambda step: 2 <= step < 10)  # fmt: skip
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    first = {p: p.read_bytes() for p in (sweep_dir / "0").rglob("*") if p.is_file()
             and (p.name == "metrics.json" or "checkpoints" in p.parts)}  # fmt: skip
    assert sweep_dir / "0" / "metrics.json" in first
    assert not (sweep_dir / "1" / "metrics.json").exists() and not (sweep_dir / "2").exists()

    again = run_command(*words, cwd=tmp_path)
    assert again.returncode == 0, explain(again)
    for text in ("Sweep job 0 skipped", "Sweep job 1 resumed", "Sweep job 2 started",
                 "1 skipped, 1 resumed, 1 started"):  # fmt: skip
        assert text in again.stdout, explain(again)
    assert {p: p.read_bytes() for p in first} == first  # job 0 untouched, byte for byte
    status = json.loads((sweep_dir / "sweep_status.json").read_text())
    assert [(j["job"], j["state"], j["finished"]) for j in status["jobs"]] == [
        (0, "skipped", True), (1, "resumed", True), (2, "started", True)
    ]  # fmt: skip

    # job 1 ends as the same job never interrupted
    from hydra.core.global_hydra import GlobalHydra

    from composing import compose_run

    reference = tmp_path / "reference"
    train(compose_run([*SWEEP, "seed=2"], "train", reference, tmp_path / "data"))
    GlobalHydra.instance().clear()
    ours = torch.load(sweep_dir / "1" / "checkpoints" / "last.ckpt", weights_only=True)
    theirs = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    assert ours["global_step"] == theirs["global_step"] == 10
    for name, tensor in theirs["state_dict"].items():
        assert torch.allclose(ours["state_dict"][name], tensor, rtol=0, atol=1e-6), name
