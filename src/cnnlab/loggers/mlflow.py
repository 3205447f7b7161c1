"""``logger=mlflow``: Lightning's MLFlowLogger, writing into one MLflow store for all runs.

What a run logs there: its composed config as params, the metrics under the names TensorBoard
shows, and at the end metrics.json, config.yaml and the best checkpoint as artifacts. The run
folder records the MLflow run (RUN_DIR/mlflow.json, ``mlflow_record.py``), so that
``ckpt_path=last`` continues it. mlflow itself is imported only once a logger is made.
"""

import logging
import socket
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from cnnlab.errors import UserError
from cnnlab.loggers.mlflow_record import read_record, require_mlflow, write_record

log = logging.getLogger("cnnlab")

SQLITE = "sqlite:///"
RUN_DIR_TAG = "cnnlab.run_dir"  # the run folder, on every MLflow run cnnlab starts
BATCH = 100  # MLflow's log_batch takes at most 100 params a request


def flat_params(config: Mapping, prefix: str = "") -> dict[str, object]:
    """``config`` as one level of dotted keys (``optimizer.lr``), as MLflow lists params; a list
    or an empty mapping stays one value."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class MLflowRun(MLFlowLogger):
    """Lightning's MLFlowLogger with cnnlab's run record, params and run files.

    - The MLflow run opens as the trainer sets up (``experiment``), not when the logger is
      made: ``debug=fast_dev_run``, whose trainer swaps loggers for a dummy, leaves no run
      behind. Opening writes RUN_DIR/mlflow.json, so every checkpoint that ``ckpt_path=last``
      can resume from comes after the record (``resumed``: the recorded run goes on).
    - Params: ``run_config`` (the composed config) with dotted keys (Lightning's logger joins
      with "/" and cuts values to 250 characters), values kept up to MLflow's own limit
      (``MAX_PARAM_VAL_LENGTH``, 6,000 characters in MLflow 3): a longer value is cut to that
      length, not left out. MLflow refuses to change a logged param, so keys the run already
      has (a resumed run: ``ckpt_path``, a longer ``trainer.max_epochs``) keep their first value.
    - Metrics are Lightning's: a name keeps its "/" (``train/loss``, ``val/acc``); Lightning drops
      characters other than letters, digits, ``_ / . -`` and space (a class name with others
      in ``test/recall_<class>`` loses them, with a warning).
    - ``log_run_files`` adds the files that exist only once the run is over. Lightning's own
      checkpoint logging (``log_model``) stays off: ``log_best_checkpoint`` uploads the best
      checkpoint once, whatever the number of checkpoint callbacks.
    """

    def __init__(
        self,
        *,
        run_dir: str | Path,
        tracking_uri: str,
        run_config: Mapping | None = None,
        resumed: bool = False,
        log_best_checkpoint: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(tracking_uri=tracking_uri, log_model=False, **kwargs)
        self.run_dir = Path(run_dir)
        self.tracking_uri = tracking_uri
        self.run_config = run_config
        self.resumed = resumed
        self.log_best_checkpoint = log_best_checkpoint
        self.opened = False

    @property
    def experiment(self):
        """MLflow's client. The first use, on rank 0, opens the run (``open``): Lightning's
        setup, as fit or test starts, is that first use."""
        if not self.opened and rank_zero_only.rank == 0:
            self.open()
        return super().experiment

    @rank_zero_only
    def log_hyperparams(self, params: Mapping) -> None:
        """Params besides the config (Lightning passes a module's saved hparams; cnnlab's
        modules save none)."""
        self.log_params(params)

    def open(self) -> None:
        """Create (``resumed``: reopen) the MLflow run, record it in the run folder and log
        ``run_config``. A store that does not take the run is the user's to fix (a path, a
        server), and a server that refuses connections is named at once (MLflow itself
        retries for minutes)."""
        from mlflow.exceptions import MlflowException

        self.opened = True  # from here on, self.experiment is Lightning's own
        try:
            if not server_answers(self.tracking_uri):
                raise MlflowException("nothing answers at that address")
            run_id = self.run_id  # creates the experiment and the run, or finds the resumed run
            if self.resumed:
                self.experiment.update_run(run_id, status="RUNNING")
        except MlflowException as e:
            again = (" It continues the MLflow run that RUN_DIR/mlflow.json names: delete that "
                     "file to log the rest into a new run.") if self.resumed else ""  # fmt: skip
            raise UserError(
                f"MLflow at {self.tracking_uri} did not take the run "
                f"({e.message.splitlines()[0]}). Check logger.mlflow.tracking_uri: a database "
                "path that can be written, or a server that answers (mlflow server "
                f"--backend-store-uri sqlite:///outputs/mlflow.db).{again}"
            ) from None
        write_record(self.run_dir, self.tracking_uri, self.experiment_id, run_id)
        self.log_params(self.run_config or {})

    def log_params(self, params: Mapping) -> None:
        """``params`` flattened, cut to MLflow's length limit, those the run lacks only."""
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        values = {k: str(v)[:MAX_PARAM_VAL_LENGTH] for k, v in flat_params(params).items()}
        if not values:
            return
        logged = self.experiment.get_run(self.run_id).data.params
        kept = sorted(k for k, v in values.items() if k in logged and logged[k] != v)
        if kept:
            log.info("MLflow keeps the first value of the params that changed: %s.",
                     ", ".join(kept))  # fmt: skip
        new = [Param(k, v) for k, v in values.items() if k not in logged]
        for start in range(0, len(new), BATCH):
            self.experiment.log_batch(self.run_id, params=new[start : start + BATCH])

    @rank_zero_only
    def log_run_files(self, best: str = "") -> None:
        """metrics.json and the composed config (``.hydra/config.yaml``) at the top of the run's
        artifacts; the ``best`` checkpoint under ``checkpoints/`` unless log_model=false."""
        if not self.opened:  # the trainer never used this logger (fast_dev_run)
            return
        for path in (self.run_dir / "metrics.json", self.run_dir / ".hydra" / "config.yaml"):
            if path.is_file():
                self.experiment.log_artifact(self.run_id, str(path))
        if self.log_best_checkpoint and best:
            self.replace_checkpoint(Path(best))

    def replace_checkpoint(self, best: Path) -> None:
        """Upload ``best`` as the one file under ``checkpoints/``. A run resumed for longer
        has the best of its first part there already: that one goes, as it went from the run
        folder (``save_top_k``), so the artifact is always the run's best."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        artifact_uri = self.experiment.get_run(self.run_id).info.artifact_uri
        repository = get_artifact_repository(artifact_uri, tracking_uri=self.tracking_uri)
        for old in self.experiment.list_artifacts(self.run_id, "checkpoints"):
            if Path(old.path).name != best.name:
                repository.delete_artifacts(old.path)
        self.experiment.log_artifact(self.run_id, str(best), "checkpoints")


def upload_run_files(loggers: Iterable, best: str = "") -> None:
    """Hand the finished run's files to each MLflow logger among ``loggers`` (once
    metrics.json is written); ``best``: the best checkpoint's path, or ""."""
    for logger in loggers:
        if isinstance(logger, MLflowRun):
            logger.log_run_files(best)


def server_answers(tracking_uri: str, timeout: float = 5.0) -> bool:
    """Whether the host of an http(s) tracking URI takes a connection; True for other URIs."""
    parts = urllib.parse.urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https"):
        return True
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def store_uri(tracking_uri: str) -> str:
    """``tracking_uri`` with a relative SQLite path made absolute (from the working directory)
    and its folder made, so the record in the run folder holds wherever it is read from; other
    URIs (a server, another database) as they are."""
    if not tracking_uri.startswith(SQLITE):
        return tracking_uri
    path = Path(tracking_uri[len(SQLITE) :]).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(
            f"logger.mlflow.tracking_uri={tracking_uri}: the folder {path.parent} for the MLflow "
            f"database cannot be made ({e.strerror}). Give a path that can be written."
        ) from None
    return f"{SQLITE}{path}"


def default_artifacts(tracking_uri: str) -> str | None:
    """DIR/mlartifacts beside a SQLite database in DIR (as ``mlflow server`` keeps
    ./mlartifacts beside ./mlflow.db); None otherwise: a server chooses its own."""
    if not tracking_uri.startswith(SQLITE):
        return None
    return (Path(tracking_uri[len(SQLITE) :]).parent / "mlartifacts").as_uri()


def run_label(run_dir: str | Path) -> str:
    """What the MLflow UI lists a new run by: the overrides typed for it (``optimizer=sgd
    data.batch_size=128``; those of ``logger``, ``hydra`` and ``ckpt_path`` left out), so the
    runs of a ``-m`` sweep tell apart, or its run folder's name when none were typed."""
    from hydra.core.hydra_config import HydraConfig

    typed = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    skip = ("logger", "hydra.", "ckpt_path")
    kept = [o for o in typed if not o.lstrip("+~").startswith(skip)]
    return " ".join(kept) or Path(run_dir).name


def mlflow_logger(
    run_dir: str,
    tracking_uri: str,
    experiment_name: str,
    run_name: str | None = None,
    artifact_location: str | None = None,
    log_model: bool = True,
    run_config: Mapping | None = None,
    resume: bool = False,
) -> MLflowRun:
    """The MLflow logger of ``logger=mlflow`` (configs/logger/mlflow.yaml).

    A new run goes to ``experiment_name`` in ``tracking_uri`` (a relative SQLite path is taken
    from the working directory), named ``run_name`` or by ``run_label``, tagged
    ``cnnlab.run_dir`` with its run folder (shown as its description too), with
    ``run_config`` (the composed config, passed by ``build_loggers``) as its params; a new
    experiment keeps its artifacts at ``artifact_location`` (null: ``default_artifacts``).
    ``resume`` (``ckpt_path=...``, passed by ``build_loggers``): the run that RUN_DIR/mlflow.json
    names goes on, in its own store, whatever ``tracking_uri`` says now; a run folder without the
    record starts a new MLflow run.
    """
    require_mlflow()
    record = read_record(run_dir) if resume else None
    common = dict(run_dir=run_dir, run_config=run_config, log_best_checkpoint=log_model)
    if record is not None:
        uri = record["tracking_uri"]
        return MLflowRun(tracking_uri=uri, run_id=record["run_id"], resumed=True, **common)
    uri, folder = store_uri(tracking_uri), str(Path(run_dir).resolve())
    return MLflowRun(
        experiment_name=experiment_name,
        run_name=run_name or run_label(run_dir),
        tracking_uri=uri,
        artifact_location=artifact_location or default_artifacts(uri),
        tags={RUN_DIR_TAG: folder, "mlflow.note.content": f"cnnlab run folder: {folder}"},
        **common,
    )
