"""The optional Hydra plugins: hydra/launcher=slurm and hparams_search=optuna compose (the
search itself runs in tests/sweep/test_optuna_search.py).

Each test skips, saying why, where its plugin (the extras cnnlab[slurm], cnnlab[optuna]) is not
installed.
"""

import importlib.util

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from cnnlab.factory.configs import config_dir


def needs(module: str, extra: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None,
        reason=f"{module} is not installed (pip install 'cnnlab[{extra}]')",
    )


def compose_with_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose("train", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


@needs("hydra_plugins.hydra_submitit_launcher", "slurm")
def test_slurm_launcher_composes_with_overrides():
    cfg = compose_with_hydra(
        [
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.gpus_per_node=4",
            "hydra.launcher.nodes=2",
            "hydra.launcher.timeout_min=60",
            "trainer=ddp",
            "trainer.devices=4",
            "trainer.num_nodes=2",
        ]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.nodes, launcher.timeout_min) == ("gpu", 2, 60)
    assert launcher.gpus_per_node == launcher.tasks_per_node == 4  # one process per GPU
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 2
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"


@needs("optuna", "optuna")
def test_optuna_search_space_composes():
    cfg = compose_with_hydra(["hparams_search=optuna", "hydra.sweeper.pruner=hyperband"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.cnnlab_optuna_sweeper.CnnlabOptunaSweeper"
    assert (sweeper.direction, sweeper.storage, sweeper.pruner) == ("maximize", None, "hyperband")
    assert sweeper.study_name == "train"  # the task's name
    assert set(sweeper.params) == {
        "optimizer",
        "optimizer.lr",
        "optimizer.weight_decay",
        "data.batch_size",
    }
