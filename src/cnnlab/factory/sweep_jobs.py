"""Coming back to a sweep: the same ``cnnlab-train -m ...`` command run again with the same
``hydra.sweep.dir`` goes on where the last one stopped.

Each job looks at its own run folder before it trains:

- ``metrics.json`` there: the job finished before; it is **skipped** (its metrics.json and
  checkpoints are left as they are, and the sweeper gets the stored metrics back);
- ``checkpoints/last.ckpt`` but no metrics.json: it was stopped (killed, preempted); it is
  **resumed** exactly as a single run is with ``ckpt_path=last``;
- neither: it is **started**.

``overwrite=true`` starts every job again. Each job writes its state into
``.hydra/cnnlab_job.json``; at the end of the sweep ``SweepStatus`` (a Hydra callback) gathers
them into the sweep folder's ``sweep_status.json`` and logs how many jobs were skipped,
resumed and started. A single run (no ``-m``) is not touched by any of this.
"""

import json
import logging
from pathlib import Path

from hydra.experimental.callback import Callback

log = logging.getLogger("cnnlab")

JOB_FILE = "cnnlab_job.json"  # in the job's .hydra/ folder
STATUS_FILE = "sweep_status.json"


def sweep_job() -> tuple[int, list[str]] | None:
    """(job number, overrides) of the job this process runs inside a ``-m`` sweep, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    return int(hydra.job.num), list(hydra.overrides.task)


def plan_job(cfg) -> tuple[str, dict | None]:
    """What a sweep job does with its run folder: ("skipped", the stored metrics), ("resumed",
    None) with ``cfg.ckpt_path`` set to its last.ckpt, ("started", None); ("", None) outside a
    sweep. The state is written for ``SweepStatus``."""
    job = sweep_job()
    if job is None:
        return "", None
    number, overrides = job
    run_dir = Path(cfg.paths.output_dir)
    metrics, last = run_dir / "metrics.json", run_dir / "checkpoints" / "last.ckpt"
    stored = None
    if not cfg.get("overwrite"):
        check_same_job(run_dir, number, overrides)
    if cfg.get("overwrite") or cfg.get("ckpt_path"):
        state = "started" if not cfg.get("ckpt_path") else "resumed"
    elif metrics.is_file():
        state, stored = "skipped", json.loads(metrics.read_text())
    elif last.is_file():
        state = "resumed"
        cfg.ckpt_path = str(last)
    else:
        state = "started"
    why = {"skipped": "finished before (metrics.json)", "resumed": f"from {cfg.get('ckpt_path')}",
           "started": "new"}[state]  # fmt: skip
    log.info("Sweep job %d %s: %s.", number, state, why)
    record = {"job": number, "state": state, "overrides": overrides}
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra" / JOB_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return state, stored


def check_same_job(run_dir: Path, number: int, overrides: list[str]) -> None:
    """A UserError when job ``number``'s folder holds a run of other overrides (another sweep
    in the same ``hydra.sweep.dir``, or a search whose jobs are numbered anew each time), which
    must be neither skipped nor resumed as if it were this job."""
    record = run_dir / ".hydra" / JOB_FILE
    if not record.is_file():
        return
    before = json.loads(record.read_text()).get("overrides")
    if before is not None and sorted(before) != sorted(overrides):
        from cnnlab.errors import UserError

        raise UserError(
            f"{run_dir} holds job {number} of another sweep (overrides {' '.join(before)}), not "
            f"this one ({' '.join(overrides)}). Give this sweep its own hydra.sweep.dir, or add "
            "overwrite=true to train every job again."
        )


class SweepStatus(Callback):
    """At the end of a ``-m`` sweep: ``sweep_status.json`` in the sweep folder, one entry per
    job (its number, overrides, how it began this time and whether it has finished). A job of
    an earlier command that this one did not run (a trial of an earlier ``hparams_search``
    command into the same folder) has the state ``earlier``."""

    def __init__(self) -> None:
        self.started = None

    def on_multirun_start(self, config, **kwargs) -> None:
        import time

        self.started = time.time()

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = []
        for record in sorted(sweep_dir.glob(f"*/.hydra/{JOB_FILE}")):
            entry = json.loads(record.read_text())
            if self.started is not None and record.stat().st_mtime < self.started:
                entry["state"] = "earlier"
            run_dir = record.parent.parent
            entry["run_dir"] = str(run_dir)
            entry["finished"] = (run_dir / "metrics.json").is_file()
            jobs.append(entry)
        jobs.sort(key=lambda e: e["job"])
        if not jobs:
            return
        (sweep_dir / STATUS_FILE).write_text(json.dumps({"jobs": jobs}, indent=2) + "\n")
        counts = {s: sum(e["state"] == s for e in jobs) for s in ("skipped", "resumed", "started")}
        unfinished = [e["job"] for e in jobs if not e["finished"]]
        earlier = sum(e["state"] == "earlier" for e in jobs)
        log.info(
            "Sweep %s: %d skipped, %d resumed, %d started%s%s -> %s",
            sweep_dir, counts["skipped"], counts["resumed"], counts["started"],
            f", {earlier} from earlier commands" if earlier else "",
            f"; not finished: {unfinished}" if unfinished else "", sweep_dir / STATUS_FILE,
        )  # fmt: skip
