"""docs/images/mlflow_ui.png: the MLflow UI comparing cnnlab runs, as headless Chromium draws it.

    python scripts/mlflow_screenshot.py                  # trains three runs first (~3-5 min)
    python scripts/mlflow_screenshot.py --workdir DIR    # DIR/outputs/mlflow.db's newest runs

Without --workdir, trains ``cnnlab-train -m logger=mlflow optimizer=sgd,momentum,adam
trainer.max_epochs=10`` (digits, LeNet-5) in a temporary folder. Then it starts ``mlflow ui`` on
that folder's outputs/mlflow.db, opens MLflow's metric page for the newest --runs runs of the
experiment ``train`` (val/acc and train/loss over the steps, then a table per metric), saves a
1400x900 screenshot and stops the server. Needs ``chromium`` (Debian: apt-get install chromium)
and ``pip install "cnnlab[mlflow]"``.

The server listens on 127.0.0.2, which is this machine too: MLflow's UI opens its assistant
panel over a quarter of the page when it is served from localhost or 127.0.0.1.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # cnnlab-train and mlflow of the Python running this
HOST = "127.0.0.2"
WIDTH, HEIGHT = 1400, 900
SWEEP = ["-m", "logger=mlflow", "optimizer=sgd,momentum,adam", "trainer.max_epochs=10"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_ui(store: Path, port: int, log: Path) -> subprocess.Popen:
    """``mlflow ui`` on ``store``, in a process group of its own (stop_ui ends all of it)."""
    origin = f"{HOST}:{port}"
    command = [str(BIN / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{store}",
               "--host", HOST, "--port", str(port), "--workers", "1",
               "--allowed-hosts", origin, "--cors-allowed-origins", f"http://{origin}"]  # fmt: skip
    out = log.open("w")
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_up(proc: subprocess.Popen, url: str, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"mlflow ui ended:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"mlflow ui did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


def stop_ui(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def metric_page(url: str, store: Path, runs: int, metrics: list[str]) -> str:
    """The UI's address of the page that plots ``metrics`` for the newest ``runs`` runs of the
    experiment ``train`` (its query holds the plot's settings)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("train")
    found = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                               max_results=runs)  # fmt: skip
    as_json = {  # the page reads these as JSON: "val/acc" in quotes, lists in brackets
        "runs": [r.info.run_id for r in found],
        "metric": metrics[0],
        "experiments": [experiment.experiment_id],
        "plot_metric_keys": metrics,
        "plot_layout": {},
        "deselected_curves": [],
        "last_linear_y_axis_range": [],
    }
    plain = {"x_axis": "step", "y_axis_scale": "linear", "line_smoothness": "1",
             "show_point": "true"}  # fmt: skip
    query = {**{k: json.dumps(v) for k, v in as_json.items()}, **plain}
    encoded = "&".join(f"{key}={urllib.parse.quote(value)}" for key, value in query.items())
    return f"{url}/#/metric/{urllib.parse.quote(metrics[0], safe='')}?{encoded}"


def screenshot(browser: str, page: str, out: Path) -> None:
    """``page`` drawn by headless Chromium after 20 s of (virtual) time for the UI's requests."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={out}",
             f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=20000", page],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="holds outputs/mlflow.db")
    parser.add_argument("--runs", type=int, default=3, help="the newest N runs are compared")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "mlflow_ui.png")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("no chromium on PATH: apt-get install chromium")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mlflow-demo-"))
    if args.workdir is None:
        subprocess.run([str(BIN / "cnnlab-train"), *SWEEP], check=True, cwd=workdir)
    store = (workdir / "outputs" / "mlflow.db").resolve()
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = workdir / "mlflow_ui.log"
    proc = start_ui(store, port, log)
    try:
        wait_until_up(proc, url, log)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        screenshot(browser, metric_page(url, store, args.runs, ["val/acc", "train/loss"]), args.out)
    finally:
        stop_ui(proc)
    from PIL import Image  # 256 colours: a third of the bytes, the same to the eye

    Image.open(args.out).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
        args.out, optimize=True
    )
    print(f"wrote {args.out} (runs and store in {workdir})")


if __name__ == "__main__":
    main()
