"""trainer=ddp_cpu through the real command: two gloo processes on this machine, as in CI.

Lightning starts rank 1 by running the command again; these runs check that Hydra and the
relaunch agree on one run folder and that rank 0 alone writes the run's files.
"""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from commands import explain, run_command

pytestmark = pytest.mark.slow  # two processes, each paying the imports: 20-40 s a run

SHORT = [
    "trainer=ddp_cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "callbacks.tensorboard_images=null",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(*overrides: str, cwd: Path, multirun: bool = False) -> subprocess.CompletedProcess:
    """cnnlab-train in ``cwd`` (runs go to cwd/outputs), on a port no other test uses."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    for name in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK"):
        env.pop(name, None)  # a test runner started by torchrun must not pass its rank on
    args = [*(["-m"] if multirun else []), *SHORT, *overrides]
    return run_command("cnnlab-train", *args, cwd=cwd, env=env, timeout=300)


def assert_one_rank_wrote(run_dir: Path) -> None:
    """The run folder as rank 0 leaves it: no trace of rank 1's files."""
    names = {p.name for p in run_dir.iterdir()}
    assert {".hydra", "train.log", "metrics.json", "checkpoints"} <= names, names
    assert not [n for n in names if n.endswith(".log") and n != "train.log"], names
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["global_step"] == 4  # 4 batches per rank, in step with each other


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One two-process run with the default, timestamped run folder."""
    cwd = tmp_path_factory.mktemp("ddp")
    return cwd, train(cwd=cwd)


def test_ddp_run_makes_one_run_folder(ddp_run):
    cwd, proc = ddp_run
    assert proc.returncode == 0, explain(proc)
    runs = list((cwd / "outputs" / "train").iterdir())
    assert len(runs) == 1, runs  # rank 1 reused rank 0's folder, no second timestamp
    assert_one_rank_wrote(runs[0])
    assert "WORLD_SIZE: 2" in proc.stdout or "MEMBER: 2/2" in proc.stdout


def test_ddp_ranks_end_without_errors(ddp_run):
    _, proc = ddp_run
    assert "Traceback" not in proc.stdout, explain(proc)


def test_ddp_sweep_runs_each_job_once(tmp_path):
    """-m with DDP: each job's rank 1 repeats that job in that job's folder, not the sweep."""
    proc = train("seed=1,2", cwd=tmp_path, multirun=True)
    assert proc.returncode == 0, explain(proc)
    sweeps = list((tmp_path / "outputs" / "train").iterdir())
    assert len(sweeps) == 1, sweeps  # no sweep folder of rank 1's own
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir())
    assert jobs == ["0", "1"], jobs
    for job in jobs:
        assert_one_rank_wrote(sweeps[0] / job)
    assert proc.stdout.count("Launching 2 jobs") == 1
