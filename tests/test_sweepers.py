"""The optional Hydra plugins: hydra/launcher=slurm composes, hparams_search=optuna searches.

Each test skips, saying why, where its plugin (the extras cnnlab[slurm], cnnlab[optuna]) is not
installed.
"""

import importlib.util
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from cnnlab.factory.configs import config_dir

from commands import run_command


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


@needs("hydra_plugins.hydra_optuna_sweeper", "optuna")
def test_optuna_search_space_composes():
    cfg = compose_with_hydra(["hparams_search=optuna"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize"
    assert set(sweeper.params) == {
        "optimizer",
        "optimizer.lr",
        "optimizer.weight_decay",
        "data.batch_size",
    }


@pytest.mark.slow  # two short training runs in one process: about 20 s
@needs("hydra_plugins.hydra_optuna_sweeper", "optuna")
def test_optuna_search_returns_best_trial(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_command(
        "cnnlab-train",
        *[
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            f"hydra.sweep.dir={sweep}",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=3",
            "+trainer.limit_val_batches=2",
            "+trainer.limit_test_batches=1",
            "callbacks.tensorboard_images=null",
            "logger=none",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(results.best_params) == {
        "optimizer",
        "optimizer.lr",
        "optimizer.weight_decay",
        "data.batch_size",
    }
    assert 0.0 <= results.best_value <= 1.0  # val/acc, the value main() returned
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    # each trial ran with values of its own, drawn by the sampler, not the configs' defaults
    tried = [OmegaConf.load(sweep / job / ".hydra" / "config.yaml") for job in ("0", "1")]
    rates = [job.optimizer.lr for job in tried]
    decays = [job.optimizer.weight_decay for job in tried]
    assert rates[0] != rates[1] and decays[0] != decays[1]
    for job in ("0", "1"):
        typed = dict(
            o.split("=", 1) for o in OmegaConf.load(sweep / job / ".hydra" / "overrides.yaml")
        )
        default = OmegaConf.load(Path(config_dir()) / "optimizer" / f"{typed['optimizer']}.yaml")
        assert float(typed["optimizer.lr"]) != default.lr
        assert float(typed["optimizer.weight_decay"]) != default.get("weight_decay", 0.0)
    assert results.best_params["optimizer.lr"] in rates
