"""The Optuna trial a training job runs for, inside ``cnnlab-train -m hparams_search=optuna``.

The sweeper launches trial N as job N (its folder is ``hydra.sweep.dir/N``) and passes the
study's name and database to the job in ``hydra.sweeper``; the job reports each epoch's
validation metric to that trial and stops when the pruner says so.
"""

from cnnlab.callbacks.trial_pruning import TrialPruning
from cnnlab.factory.sweep_jobs import sweep_job
from cnnlab.sweep.study import SWEEPER, find_trial, make_pruner


def trial_callbacks(monitor: str) -> list[TrialPruning]:
    """[TrialPruning] for a job of cnnlab's Optuna sweeper whose trial is running; else []."""
    job = sweep_job()
    if job is None:
        return []
    from hydra.core.hydra_config import HydraConfig

    sweeper = HydraConfig.get().sweeper
    if sweeper.get("_target_") != SWEEPER or not sweeper.get("storage"):
        return []
    pruner = make_pruner(sweeper.get("pruner"), sweeper.get("pruner_args"))
    trial = find_trial(str(sweeper.study_name), str(sweeper.storage), job[0], pruner)
    return [] if trial is None else [TrialPruning(trial, monitor)]
