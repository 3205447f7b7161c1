"""The study a search adds its trials to: its storage, sampler and pruner.

The sweeper and the jobs it launches build these from the same ``hydra.sweeper`` config, so a
job (in-process, or a separate process under another launcher) finds its trial in the same
database and judges it with the same pruner.
"""

from pathlib import Path

from cnnlab.errors import UserError

SWEEPER = "hydra_plugins.cnnlab_optuna_sweeper.CnnlabOptunaSweeper"  # the _target_ Hydra needs
DEFAULT_DB = "optuna.db"  # in the sweep folder
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random")


def require_optuna():
    """The ``optuna`` package, or a UserError naming the optional extra that brings it."""
    try:
        import optuna
    except ImportError:
        raise UserError(
            "hparams_search=optuna needs Optuna, which is not installed: "
            'pip install "cnnlab[optuna]" (or pip install optuna).'
        ) from None
    return optuna


def storage_url(storage: str | None, sweep_dir: str | Path) -> str:
    """``storage`` as given (any database URL Optuna takes), or SQLite in the sweep folder."""
    if storage:
        return str(storage)
    return f"sqlite:///{Path(sweep_dir).resolve() / DEFAULT_DB}"


def make_pruner(name: str | None, args: dict | None = None):
    """Optuna's pruner for ``hydra.sweeper.pruner`` with ``hydra.sweeper.pruner_args``."""
    import optuna

    name, args = str(name or "none").lower(), dict(args or {})
    if name == "median":  # below the median of earlier trials at the same epoch
        return optuna.pruners.MedianPruner(**args)
    if name == "hyperband":  # successive halving over epochs, brackets of budgets
        return optuna.pruners.HyperbandPruner(**{"min_resource": 1, **args})
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"hydra.sweeper.pruner={name}: choose one of {', '.join(PRUNERS)}.")


def make_sampler(settings: dict | None, trials_so_far: int):
    """The sampler, seeded with ``seed + trials_so_far``: the same command gives the same
    search, and running it again on the same study draws new values instead of the first
    invocation's again."""
    import optuna

    settings = dict(settings or {})
    name = str(settings.pop("name", "tpe")).lower()
    seed = settings.pop("seed", None)
    if seed is not None:
        seed = int(seed) + trials_so_far
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **settings)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"hydra.sweeper.sampler.name={name}: choose one of {', '.join(SAMPLERS)}.")


def open_study(name: str, url: str, direction: str, sampler=None, pruner=None):
    """The study ``name`` in ``url``, created on first use."""
    import optuna

    if direction not in ("maximize", "minimize"):
        raise UserError(f"hydra.sweeper.direction={direction}: maximize or minimize.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # cnnlab logs each trial itself
    study = optuna.create_study(study_name=name, storage=url, direction=direction,
                                sampler=sampler, pruner=pruner, load_if_exists=True)  # fmt: skip
    if study.direction.name.lower() != direction:
        raise UserError(
            f"Study {name!r} in {url} was created to {study.direction.name.lower()}, not to "
            f"{direction}: give this search another hydra.sweeper.study_name."
        )
    return study


def find_trial(name: str, url: str, number: int, pruner=None):
    """Trial ``number`` of study ``name`` (an ``optuna.Trial`` to report to and ask whether to
    prune), or None where it is not running (told already, or never asked)."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.get_storage(url)
    study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
    study_id = storage.get_study_id_from_name(name)
    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    except KeyError:
        return None
    if storage.get_trial(trial_id).state != TrialState.RUNNING:
        return None
    return optuna.trial.Trial(study, trial_id)
