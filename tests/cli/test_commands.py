"""End-to-end: the installed console scripts, each run in a subprocess as a user runs them.

Every subprocess pays 6-9 s of imports, so there are few of them: one default training run is
shared by the tests that read its run folder, resume from it and evaluate its checkpoint.
"""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from commands import explain, run_command

pytestmark = pytest.mark.slow


# The bundled digits split: 1,257 training images in batches of 64 make 20 steps per epoch.
STEPS_PER_EPOCH = 20


def run(command: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run an installed console script; stdout and stderr together in ``.stdout``."""
    return run_command(command, *args, cwd=cwd)


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def fingerprint(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``cnnlab-train trainer.max_epochs=2`` on the defaults (LeNet-5, digits), run once."""
    cwd = tmp_path_factory.mktemp("default_run")
    run_dir = cwd / "run"
    proc = run("cnnlab-train", "trainer.max_epochs=2", f"hydra.run.dir={run_dir}", cwd=cwd)
    assert proc.returncode == 0, explain(proc)
    return run_dir, proc


def best_checkpoint(run_dir: Path) -> Path:
    best = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1, f"expected one best-*.ckpt, found {best}"
    return best[0]


def test_default_run_fills_its_run_folder(trained):
    run_dir, proc = trained
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    best_checkpoint(run_dir)
    # Nothing went to the default outputs/ folder of the working directory.
    assert not (run_dir.parent / "outputs").exists()

    log = (run_dir / "train.log").read_text()
    assert str(run_dir) in log
    assert "epoch 1/2" in log and "epoch 2/2" in log
    assert "epoch 2/2" in proc.stdout

    metrics = read_metrics(run_dir)
    expected = {"test/acc", "test/loss", "test/acc_top5", "val/acc", "val/loss"}
    expected |= {"train/acc", "train/loss", "lr", "epoch", "global_step"}
    assert expected <= set(metrics), f"missing {expected - set(metrics)}"
    assert metrics["epoch"] == 2
    assert metrics["global_step"] == 2 * STEPS_PER_EPOCH
    for key in ("test/acc", "test/acc_top5", "val/acc", "train/acc"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    assert metrics["test/acc_top5"] >= metrics["test/acc"]
    # Two epochs of LeNet-5 on digits are far above chance (0.1); it learned something.
    assert metrics["test/acc"] > 0.5, metrics


def test_default_run_tensorboard_events(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = trained
    tb_dir = run_dir / "tensorboard"
    assert list(tb_dir.rglob("events.out.tfevents.*")), f"no event files in {tb_dir}"
    events = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "lr", "train/acc", "val/acc", "val/loss", "test/acc"} <= tags, tags

    last_step = 2 * STEPS_PER_EPOCH
    for tag in ("train/loss", "lr"):
        steps = [e.step for e in events.Scalars(tag)]
        assert len(set(steps)) >= 3, (tag, steps)
        assert all(0 <= s <= last_step for s in steps), (tag, steps)
    # One name everywhere: TensorBoard's last points are the values in metrics.json.
    metrics = read_metrics(run_dir)
    for tag in ("val/acc", "val/loss", "test/acc"):
        assert events.Scalars(tag)[-1].value == pytest.approx(metrics[tag], abs=1e-6), tag


def test_eval_reproduces_the_test_metrics(trained, tmp_path):
    run_dir, _ = trained
    eval_dir = tmp_path / "eval"
    ckpt = best_checkpoint(run_dir)
    proc = run("cnnlab-eval", f"ckpt_path={ckpt}", f"hydra.run.dir={eval_dir}", cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    trained_metrics, evaluated = read_metrics(run_dir), read_metrics(eval_dir)
    for key in ("test/acc", "test/loss"):
        assert abs(evaluated[key] - trained_metrics[key]) <= 1e-4, (key, evaluated, trained_metrics)
    assert (evaluated["epoch"], evaluated["global_step"]) == (2, 2 * STEPS_PER_EPOCH)
    assert (eval_dir / ".hydra" / "config.yaml").is_file()


def test_resume_for_longer_rebuilds_the_schedule(trained, tmp_path):
    run_dir, _ = trained
    before = fingerprint(run_dir / "checkpoints")
    resumed = tmp_path / "resumed"
    proc = run(
        "cnnlab-train",
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "trainer.max_epochs=3",
        f"hydra.run.dir={resumed}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, explain(proc)
    metrics = read_metrics(resumed)
    assert metrics["epoch"] == 3
    assert metrics["global_step"] == 3 * STEPS_PER_EPOCH
    log = (resumed / "train.log").read_text()
    assert "rebuilt" in log
    assert "epoch 3/3" in log and "epoch 1/3" not in log  # it went on, it did not start over
    assert (resumed / "checkpoints" / "last.ckpt").is_file()
    # The run resumed from is left as it was.
    assert fingerprint(run_dir / "checkpoints") == before


def test_multirun_makes_one_folder_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(
        "cnnlab-train",
        "-m",
        "optimizer=sgd,adam",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, explain(proc)
    for job, optimizer in (("0", "torch.optim.SGD"), ("1", "torch.optim.Adam")):
        job_dir = sweep / job
        metrics = read_metrics(job_dir)
        assert (metrics["epoch"], metrics["global_step"]) == (1, STEPS_PER_EPOCH)
        assert "test/acc" in metrics
        cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
        assert cfg.optimizer._target_ == optimizer
    assert not (tmp_path / "outputs").exists()


def test_cfg_job_prints_the_config_and_writes_nothing(tmp_path):
    proc = run("cnnlab-train", "--cfg", "job", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert "_target_: cnnlab.models.lenet.lenet" in proc.stdout
    assert "max_epochs" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_unknown_model_lists_the_choices(tmp_path):
    proc = run(
        "cnnlab-train", "model=nosuchmodel", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert proc.returncode != 0, explain(proc)
    assert "nosuchmodel" in proc.stdout
    assert "lenet" in proc.stdout and "resnet18" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stdout, proc.stdout
    assert not (tmp_path / "run").exists()


def test_missing_checkpoint_ends_with_status_2_and_no_traceback(tmp_path):
    # cnnlab-train with a data.root that does not exist: test_bad_inputs.py::test_missing_data_root
    missing_ckpt = tmp_path / "nothing.ckpt"
    proc = run(
        "cnnlab-eval",
        f"ckpt_path={missing_ckpt}",
        f"hydra.run.dir={tmp_path / 'eval'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, explain(proc)
    assert str(missing_ckpt) in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stdout, proc.stdout
