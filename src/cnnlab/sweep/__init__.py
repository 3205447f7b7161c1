"""cnnlab's Optuna sweeper for Hydra: ``cnnlab-train -m hparams_search=optuna``.

- ``optuna_sweeper``: the search loop (ask a trial, launch its job, tell the result);
- ``search_space``: Hydra sweep syntax (``choice``, ``interval``, ``range``, ``tag(log, ...)``)
  to Optuna distributions and back to overrides;
- ``study``: where the study lives, its sampler and pruner (shared with the jobs that report to it);
- ``outputs``: what a search leaves in its folder (best_experiment.yaml, results, plots).

Hydra instantiates sweepers only from the ``hydra_plugins`` package, so the class it names is
``hydra_plugins.cnnlab_optuna_sweeper.CnnlabOptunaSweeper``, a subclass of the one here.
"""
