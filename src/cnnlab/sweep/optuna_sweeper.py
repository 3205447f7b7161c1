"""The search loop of ``cnnlab-train -m hparams_search=optuna``: ask, launch, tell.

Each command adds ``n_trials`` trials to one Optuna study kept in a database (by default
``optuna.db`` in the sweep folder; ``hydra.sweeper.storage`` names another). Trials are asked
``n_jobs`` at a time, and each becomes a job of Hydra's launcher with the trial's values as
overrides and the trial's number as its job number, so its run folder is
``hydra.sweep.dir/<trial number>`` and a second command into the same sweep folder continues
the numbering instead of writing over the first one's folders. The jobs report every epoch's
validation metric to their trial (``cnnlab.callbacks.trial_pruning``); the sweeper then tells
the study each trial's value (the job's return: the monitored metric at the end of training),
or that it was pruned. At the end the sweep folder gets ``best_experiment.yaml``,
``optimization_results.yaml`` and Optuna's plots (``cnnlab.sweep.outputs``).

A trial left running by a command that was killed is resumed first, in its own folder and with
its own overrides (from its last checkpoint, as any sweep job is), where that is known to be
safe: its command ran on this machine with Hydra's basic launcher, which runs the jobs inside
the command's process, and that process no longer exists. Other running trials (of a command
still running, or of jobs another launcher sent elsewhere) are left alone.
"""

import logging
import os
import socket
import sys
from pathlib import Path

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from cnnlab.errors import UserError
from cnnlab.sweep.search_space import as_override, search_space

log = logging.getLogger("cnnlab")


class OptunaSearch(Sweeper):
    """Hydra calls ``setup`` then ``sweep(arguments)``; the keyword arguments are the keys of
    ``configs/hydra/sweeper/cnnlab_optuna.yaml``."""

    def __init__(self, direction: str = "maximize", study_name: str = "cnnlab",
                 storage: str | None = None, n_trials: int = 20, n_jobs: int = 1,
                 sampler: dict | None = None, pruner: str = "median",
                 pruner_args: dict | None = None, params: dict | None = None) -> None:  # fmt: skip
        self.direction, self.study_name, self.storage = str(direction), str(study_name), storage
        self.n_trials, self.n_jobs = int(n_trials), max(1, int(n_jobs))
        self.sampler, self.pruner = to_dict(sampler), str(pruner)
        self.pruner_args, self.params = to_dict(pruner_args), to_dict(params)
        self.config = self.launcher = self.hydra_context = None
        self.metric = "value"

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list:
        """Run the search; a UserError of the search itself (not of a job, which ends its own
        way) ends the command with its one paragraph and exit status 2, as a run's does."""
        try:
            return self.search(arguments)
        except UserError as e:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            log.error("%s", e)
            sys.exit(2)

    def search(self, arguments: list[str]) -> list:
        from cnnlab.sweep.study import (
            make_pruner,
            make_sampler,
            open_study,
            require_optuna,
            storage_url,
        )

        require_optuna()  # before anything is written: a missing extra is named at once
        from cnnlab.sweep.outputs import write_outputs

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        space, fixed = search_space(self.params, arguments)
        self.metric = monitored_metric(self.config)
        url = storage_url(self.storage, sweep_dir)
        pruner = make_pruner(self.pruner, self.pruner_args)
        study = open_study(self.study_name, url, self.direction, pruner=pruner)
        before = len(study.trials)
        study.sampler = make_sampler(self.sampler, before)  # new draws on a continued study
        running = [t for t in study.trials if t.state.name == "RUNNING"]
        killed = [t for t in running if self.was_killed(t)]
        log.info("Optuna study %r in %s: %d trials before, %d to run (%s), pruner %s.",
                 self.study_name, url, before, self.n_trials,
                 ", ".join(space) or "nothing searched", self.pruner)  # fmt: skip
        if killed:
            log.info("Trials %s were left running by a command that was killed: resumed first, "
                     "each in its own folder.", [t.number for t in killed])  # fmt: skip
        if len(running) > len(killed):
            log.warning("Trials %s are marked running by another command (still running, or "
                        "not on this machine): left as they are.",
                        [t.number for t in running if t not in killed])  # fmt: skip
        job_args = [as_override("hydra.sweeper.study_name", self.study_name),
                    as_override("hydra.sweeper.storage", url)]  # fmt: skip
        returns, asked = [], 0
        if killed:
            returns.append(self.run_trials(study, killed, job_args))
        while asked < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - asked))]
            asked += len(trials)
            for trial in trials:
                overrides = fixed + [as_override(k, v) for k, v in trial.params.items()]
                trial.set_user_attr("overrides", overrides)
                trial.set_user_attr("command", this_command(self.config))
            returns.append(self.run_trials(study, trials, job_args))
        write_outputs(study, sweep_dir, self.config, self.n_trials, before, self.metric)
        return returns

    def was_killed(self, trial) -> bool:
        """Whether a running trial's command is known to be gone along with its job (see the
        module's docstring)."""
        command = trial.user_attrs.get("command") or {}
        if not command.get("in_process") or command.get("host") != socket.gethostname():
            return False
        if not self_launches_in_process(self.config) or command.get("pid") == os.getpid():
            return False
        try:
            os.kill(int(command["pid"]), 0)
        except ProcessLookupError:
            return True
        except (OSError, KeyError, TypeError, ValueError):
            return False
        return False  # alive (or its number taken by another process since)

    def run_trials(self, study, trials: list, job_args: list[str]) -> list:
        """Launch the trials' jobs and tell the study how each ended."""
        results = self.launch_in_order(trials, job_args)
        for trial, result in zip(trials, results, strict=True):
            self.tell(study, trial.number, result)
        return results

    def launch_in_order(self, trials: list, job_args: list[str]) -> list:
        """Launch the trials as jobs numbered by their trial numbers (one launch per run of
        consecutive numbers: another process on the same study may have taken some)."""
        results, run = [], []
        for trial in trials + [None]:
            if run and (trial is None or trial.number != run[-1].number + 1):
                batch = [job_args + t.user_attrs["overrides"] for t in run]
                self.validate_batch_is_legal(batch)
                results += self.launcher.launch(batch, initial_job_idx=run[0].number)
                run = []
            if trial is not None:
                run.append(trial)
        return results

    def tell(self, study, number: int, result) -> None:
        """Tell the study how trial ``number``'s job ended; a failed job ends the search."""
        import json
        import math

        from hydra.core.utils import JobStatus
        from optuna.trial import TrialState

        if result.status != JobStatus.COMPLETED:
            study.tell(number, state=TrialState.FAIL)
            _ = result.return_value  # raises the job's exception
        metrics_file = Path(result.hydra_cfg.hydra.runtime.output_dir) / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        value = result.return_value
        if "pruned_at_epoch" in metrics:
            study.tell(number, state=TrialState.PRUNED)
            log.info("Trial %d: pruned at epoch %d.", number, metrics["pruned_at_epoch"])
        elif value is None or not math.isfinite(float(value)):
            study.tell(number, state=TrialState.FAIL)
            log.warning("Trial %d: no finite value returned (%s); recorded as failed.",
                        number, value)  # fmt: skip
        else:
            study.tell(number, float(value))
            best = study.best_trial
            log.info("Trial %d: %s %.4f (best so far: trial %d, %.4f).", number,
                     self.metric, float(value), best.number, best.value)  # fmt: skip


BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def self_launches_in_process(config: DictConfig) -> bool:
    """Whether the jobs run inside this command's process (Hydra's basic launcher)."""
    return OmegaConf.select(config, "hydra.launcher._target_", default=None) == BASIC_LAUNCHER


def this_command(config: DictConfig) -> dict:
    """Where a trial's command runs, to tell later whether it was killed with its jobs."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "in_process": self_launches_in_process(config)}  # fmt: skip


def monitored_metric(config: DictConfig) -> str:
    """The name of the value a job returns: its task's monitored metric (val/acc, ...)."""
    from cnnlab.tasks.table import get_task

    task = OmegaConf.select(config, "data.task", default=None)
    return get_task(task).monitor if task else "value"


def to_dict(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value, resolve=True)
    return dict(value)
