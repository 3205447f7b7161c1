"""The name Hydra instantiates for ``hydra/sweeper=cnnlab_optuna`` (Hydra takes sweepers only
from the ``hydra_plugins`` package); the sweeper itself is ``cnnlab.sweep.optuna_sweeper``."""

from cnnlab.sweep.optuna_sweeper import OptunaSearch


class CnnlabOptunaSweeper(OptunaSearch):
    """cnnlab's Optuna sweeper: ``cnnlab-train -m hparams_search=optuna`` (docs/sweeps.md)."""
