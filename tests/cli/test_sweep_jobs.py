"""A sweep job looks at its run folder before it trains: skipped, resumed or started."""

import json

import pytest
from omegaconf import OmegaConf

from cnnlab.errors import UserError
from cnnlab.factory import sweep_jobs


def job_config(run_dir, **keys):
    return OmegaConf.create({"paths": {"output_dir": str(run_dir)}, "ckpt_path": None,
                             "overwrite": False, **keys})  # fmt: skip


def test_each_job_is_skipped_resumed_or_started(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_jobs, "sweep_job", lambda: (3, ["seed=4"]))
    run_dir = tmp_path / "3"
    cfg = job_config(run_dir)
    assert sweep_jobs.plan_job(cfg) == ("started", None)

    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    assert sweep_jobs.plan_job(cfg) == ("resumed", None)
    assert cfg.ckpt_path == str(run_dir / "checkpoints" / "last.ckpt")

    (run_dir / "metrics.json").write_text('{"val/acc": 0.9}')
    assert sweep_jobs.plan_job(job_config(run_dir)) == ("skipped", {"val/acc": 0.9})
    record = json.loads((run_dir / ".hydra" / sweep_jobs.JOB_FILE).read_text())
    assert record == {"job": 3, "state": "skipped", "overrides": ["seed=4"]}

    again = job_config(run_dir, overwrite=True)  # overwrite=true: a finished job trains again
    assert sweep_jobs.plan_job(again) == ("started", None) and again.ckpt_path is None


def test_a_single_run_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_jobs, "sweep_job", lambda: None)
    (tmp_path / "metrics.json").write_text("{}")
    assert sweep_jobs.plan_job(job_config(tmp_path)) == ("", None)
    assert not (tmp_path / ".hydra").exists()


def test_a_folder_of_another_sweep_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_jobs, "sweep_job", lambda: (0, ["optimizer.lr=0.1"]))
    assert sweep_jobs.plan_job(job_config(tmp_path)) == ("started", None)
    (tmp_path / "metrics.json").write_text("{}")
    monkeypatch.setattr(sweep_jobs, "sweep_job", lambda: (0, ["optimizer.lr=0.01"]))
    with pytest.raises(UserError, match="holds job 0 of another sweep .*optimizer.lr=0.1"):
        sweep_jobs.plan_job(job_config(tmp_path))
    assert sweep_jobs.plan_job(job_config(tmp_path, overwrite=True)) == ("started", None)
