"""RUN_DIR/mlflow.json: which MLflow run a run folder was logged to, so that a resumed run
(``ckpt_path=last``) continues that run and ``cnnlab-report`` adds its page to it."""

import json
import logging
from pathlib import Path

from cnnlab.errors import UserError

log = logging.getLogger("cnnlab")

RECORD = "mlflow.json"
INSTALL_HINT = 'pip install "cnnlab[mlflow]" (or pip install mlflow)'


def require_mlflow():
    """The ``mlflow`` package, or a UserError naming the optional extra that brings it."""
    try:
        import mlflow
    except ImportError:
        raise UserError(
            f"logger=mlflow needs MLflow, which is not installed: {INSTALL_HINT}. Or log to "
            "TensorBoard alone with logger=tensorboard (the default)."
        ) from None
    return mlflow


def write_record(run_dir: str | Path, tracking_uri: str, experiment_id: str, run_id: str) -> Path:
    """Write RUN_DIR/mlflow.json: the store's URI and the ids of the experiment and the run."""
    path = Path(run_dir) / RECORD
    record = {"tracking_uri": tracking_uri, "experiment_id": experiment_id, "run_id": run_id}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_record(run_dir: str | Path) -> dict | None:
    """RUN_DIR/mlflow.json as a dict, or None when the run was not logged to MLflow."""
    path = Path(run_dir) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def add_to_recorded_run(run_dir: str | Path, path: str | Path) -> str | None:
    """Upload ``path`` (report.html) as an artifact of the MLflow run that RUN_DIR/mlflow.json
    names; return that run's id, or None when the run folder has no record.

    The file is already written, so a store that cannot take it (MLflow not installed, a server
    that does not answer) is a warning, not an error."""
    record = read_record(run_dir)
    if record is None:
        return None
    try:
        mlflow = require_mlflow()
        client = mlflow.MlflowClient(record["tracking_uri"])
        client.log_artifact(record["run_id"], str(path))
    except Exception as e:  # no MLflow, an MlflowException, no server: the page stays all the same
        log.warning("%s was not added to MLflow run %s (%s): %s",
                    Path(path).name, record["run_id"], record["tracking_uri"], e)  # fmt: skip
        return None
    log.info("Added %s to MLflow run %s (%s).", Path(path).name, record["run_id"],
             record["tracking_uri"])  # fmt: skip
    return record["run_id"]
