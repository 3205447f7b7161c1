"""logger=mlflow: short real digits runs logged to a SQLite store and to a local `mlflow server`,
read back with MLflow's own client."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.cli.train import train
from cnnlab.errors import UserError
from cnnlab.factory import build
from cnnlab.loggers.mlflow import default_artifacts, flat_params, mlflow_logger, store_uri
from cnnlab.loggers.mlflow_record import read_record

from composing import compose_run

TINY = [
    "logger=mlflow",
    "data.samples_per_class=10",  # 100 training digits: 2 steps an epoch
    "trainer.log_every_n_steps=1",  # train/loss and lr at every step
    "trainer.enable_model_summary=false",
    "callbacks.tensorboard_images=null",
]
LONG = "x" * 7000  # past MLflow's 6,000 characters for a param value


def tiny_run(root: Path, overrides: list[str]) -> dict:
    """Train in ``root/run`` as cnnlab-train would, its composed config in .hydra/config.yaml."""
    cfg = compose_run([*TINY, *overrides], "train", root / "run", root / "data")
    (root / "run" / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, root / "run" / ".hydra" / "config.yaml")
    try:
        return train(cfg)
    finally:
        GlobalHydra.instance().clear()


def saved_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def artifact_paths(client, run_id: str, folder: str | None = None) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, folder)}


def steps(client, run_id: str, name: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, name)]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """One epoch into a SQLite store, the same run folder resumed for a second epoch
    (ckpt_path=last), then its report page. The store is the module's one (the server below
    serves it too): making MLflow's tables takes seconds."""
    from mlflow import MlflowClient

    from cnnlab.report.html import write_report

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/store/mlflow.db"
    tiny_run(root, [f"logger.mlflow.tracking_uri={uri}", "trainer.max_epochs=1", f"+note={LONG}"])
    client = MlflowClient(uri)
    first = read_record(root / "run")
    first_steps = steps(client, first["run_id"], "train/loss")
    tiny_run(root, ["trainer.max_epochs=2", "ckpt_path=last"])
    write_report(root / "run", max_images=8)
    return SimpleNamespace(
        root=root, run_dir=root / "run", uri=uri, client=client, first=first,
        first_steps=first_steps, run_id=read_record(root / "run")["run_id"],
    )  # fmt: skip


@pytest.mark.slow  # two one-epoch runs on 100 digits and a report: ~15 s for the module
def test_params_are_the_composed_config_with_dotted_keys(resumed):
    params = resumed.client.get_run(resumed.run_id).data.params
    assert params["optimizer._target_"] == "torch.optim.Adam"
    assert params["data.samples_per_class"] == "10"
    assert params["seed"] == "42"
    assert params["logger.mlflow.experiment_name"] == "train"
    assert params["note"] == "x" * 6000  # cut to MLflow's limit, not left out
    # MLflow keeps a param's first value: the resumed part's longer max_epochs is not logged
    assert params["trainer.max_epochs"] == "1"


@pytest.mark.slow
def test_metrics_have_tensorboards_names_and_the_final_values(resumed):
    run = resumed.client.get_run(resumed.run_id)
    events = EventAccumulator(str(resumed.run_dir / "tensorboard"), size_guidance={"scalars": 0})
    tags = set(events.Reload().Tags()["scalars"])
    assert {"train/loss", "lr", "val/acc", "test/acc", "test/recall_0"} <= tags
    assert set(run.data.metrics) == tags  # the same names, "/" kept
    saved = saved_metrics(resumed.run_dir)
    assert run.data.metrics["test/acc"] == saved["test/acc"]  # the resumed part's test
    assert run.data.metrics["val/acc"] == saved["val/acc"]


@pytest.mark.slow
def test_artifacts_are_the_run_files_the_best_checkpoint_and_the_report(resumed, tmp_path):
    import mlflow

    client, run_id = resumed.client, resumed.run_id
    assert {"metrics.json", "config.yaml", "report.html", "checkpoints"} <= artifact_paths(
        client, run_id
    )
    best = {p.name for p in (resumed.run_dir / "checkpoints").glob("best-*.ckpt")}
    assert {Path(p).name for p in artifact_paths(client, run_id, "checkpoints")} == best
    got = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="metrics.json", dst_path=str(tmp_path),
        tracking_uri=resumed.uri,
    )  # fmt: skip
    assert Path(got).read_text() == (resumed.run_dir / "metrics.json").read_text()
    # the artifacts lie beside the database, in store/mlartifacts/
    assert client.get_run(run_id).info.artifact_uri.startswith(
        (resumed.root / "store" / "mlartifacts").as_uri()
    )


@pytest.mark.slow
def test_a_resumed_run_continues_the_same_mlflow_run(resumed):
    client, run_id = resumed.client, resumed.run_id
    assert run_id == resumed.first["run_id"]
    record = read_record(resumed.run_dir)
    assert record["tracking_uri"] == f"sqlite:///{resumed.root}/store/mlflow.db"
    assert len(client.search_runs([record["experiment_id"]])) == 1
    assert client.get_run(run_id).info.status == "FINISHED"
    loss_steps = steps(client, run_id, "train/loss")
    assert resumed.first_steps == [0, 1]  # one epoch of two steps
    assert loss_steps == [0, 1, 2, 3]  # the second part's steps follow on
    assert len(steps(client, run_id, "val/acc")) == 2  # one point per epoch, both parts
    assert len(steps(client, run_id, "test/acc")) == 2  # each part tested its best checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(resumed):
    """`mlflow server` on a free local port over the store of ``resumed`` (as `mlflow ui` would
    browse outputs/mlflow.db), new artifacts in a temporary folder; stopped (its whole process
    group) when the module's tests are done."""
    root = resumed.root / "server"
    root.mkdir()
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", resumed.uri,
        "--artifacts-destination", str(root / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    out = (root / "server.log").open("w")
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_it_answers(proc, url, root / "server.log")
        yield SimpleNamespace(url=url, root=root)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()


def wait_until_it_answers(proc: subprocess.Popen, url: str, log: Path, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server ended:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"mlflow server did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow  # starts `mlflow server` (~6 s) and trains one epoch on 100 digits
def test_a_run_logged_over_http_to_a_server(server, resumed, tmp_path):
    from mlflow import MlflowClient

    overrides = [f"logger.mlflow.tracking_uri={server.url}", "trainer.max_epochs=1",
                 "logger.mlflow.log_model=false", "task_name=served"]  # fmt: skip
    tiny_run(tmp_path, overrides)
    record = read_record(tmp_path / "run")
    assert record["tracking_uri"] == server.url
    client = MlflowClient(server.url)
    run = client.get_run(record["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "served"
    # named by the overrides typed for it (the logger's left out), tagged with its run folder
    assert run.info.run_name == " ".join([*TINY[1:], "trainer.max_epochs=1", "task_name=served"])
    assert run.data.tags["cnnlab.run_dir"] == str((tmp_path / "run").resolve())
    assert run.data.metrics["test/acc"] == saved_metrics(tmp_path / "run")["test/acc"]
    assert run.data.params["logger.mlflow.log_model"] == "False"
    assert artifact_paths(client, run.info.run_id) == {"metrics.json", "config.yaml"}
    # the server keeps the uploaded files in its --artifacts-destination
    assert list((server.root / "artifacts").rglob("metrics.json"))
    # ... and serves the runs logged straight into its database, their artifacts included
    assert "report.html" in artifact_paths(client, resumed.run_id)


@pytest.mark.slow  # one batch of each split: ~2 s
def test_fast_dev_run_leaves_no_mlflow_run(resumed, tmp_path):
    def runs() -> int:
        return len(resumed.client.search_runs([resumed.first["experiment_id"]]))

    before = runs()
    tiny_run(tmp_path, [f"logger.mlflow.tracking_uri={resumed.uri}", "debug=fast_dev_run"])
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert read_record(tmp_path / "run") is None
    assert runs() == before


def test_logger_mlflow_keeps_tensorboard_and_a_store_in_outputs(make_cfg, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = make_cfg(["logger=mlflow"])
    assert list(cfg.logger) == ["tensorboard", "mlflow"]
    assert cfg.logger.mlflow.tracking_uri == "sqlite:///outputs/mlflow.db"
    assert cfg.logger.mlflow.experiment_name == "train"  # task_name
    assert cfg.logger.mlflow.log_model is True
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert cfg.logger.mlflow.tracking_uri == "http://tracking.example:5000"
    assert set(make_cfg(["logger=many"]).logger) == {"tensorboard", "csv"}


def test_without_mlflow_the_message_names_the_extra(make_cfg, monkeypatch, tmp_path):
    cfg = make_cfg(["logger=mlflow", f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/m.db"])
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(UserError, match=re.escape('pip install "cnnlab[mlflow]"')):
        build.build_loggers(cfg.logger)
    assert not (tmp_path / "m.db").exists()


def test_params_flatten_with_dots_and_a_sqlite_store_is_made_absolute(tmp_path, monkeypatch):
    nested = {"a": {"b": 1, "c": [1, 2], "d": {}}, "e": None}
    assert flat_params(nested) == {"a.b": 1, "a.c": [1, 2], "a.d": {}, "e": None}
    monkeypatch.chdir(tmp_path)
    uri = store_uri("sqlite:///outputs/mlflow.db")
    assert uri == f"sqlite:///{tmp_path.resolve()}/outputs/mlflow.db"
    assert (tmp_path / "outputs").is_dir()  # SQLite makes the file, not its folder
    assert default_artifacts(uri) == (tmp_path.resolve() / "outputs" / "mlartifacts").as_uri()
    assert store_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert default_artifacts("http://127.0.0.1:5000") is None
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match="cannot be made"):
        store_uri(f"sqlite:///{tmp_path}/a_file/mlflow.db")


@pytest.mark.slow  # alone, it pays for importing mlflow (~2 s); after the others, 0.1 s
def test_a_server_that_does_not_answer_is_named_at_once(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # a port nobody listens on
    logger = mlflow_logger(run_dir=str(tmp_path), tracking_uri=url, experiment_name="train")
    started = time.monotonic()
    with pytest.raises(UserError, match=f"MLflow at {url} did not take the run .nothing answers"):
        _ = logger.experiment  # what Lightning's setup touches first
    assert time.monotonic() - started < 10  # MLflow's own retries would take minutes
    assert read_record(tmp_path) is None
