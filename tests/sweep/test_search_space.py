"""Hydra sweep syntax to Optuna's search space and back, and the best trial as an experiment
config that composes to the trial's own values."""

import re
import sys

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from cnnlab.errors import UserError
from cnnlab.factory.configs import config_dir
from cnnlab.sweep.outputs import experiment_yaml
from cnnlab.sweep.search_space import as_override, search_space
from cnnlab.sweep.study import make_pruner, make_sampler, require_optuna, storage_url


def test_each_hydra_sweep_becomes_its_optuna_distribution():
    params = {
        "optimizer": "choice(adam, sgd)",
        "optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
        "optimizer.momentum": "interval(0.8, 0.99)",
        "model.width": "tag(int, interval(8, 64))",
        "data.batch_size": "range(16, 80, 16)",
        "data.scale": "range(0.5, 1.0, 0.25)",
        "seed": "1,2,3",
    }
    space, fixed = search_space(params, [])
    assert fixed == []
    assert space["optimizer"] == CategoricalDistribution(["adam", "sgd"])
    assert space["optimizer.lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert space["optimizer.momentum"] == FloatDistribution(0.8, 0.99)
    assert space["model.width"] == IntDistribution(8, 64)
    assert space["data.batch_size"] == IntDistribution(16, 64, step=16)  # 16, 32, 48, 64
    assert space["data.scale"] == CategoricalDistribution([0.5, 0.75])
    assert space["seed"] == CategoricalDistribution([1, 2, 3])


def test_the_command_line_narrows_or_fixes_what_params_search():
    params = {"optimizer.lr": "tag(log, interval(1e-4, 1e-1))", "optimizer": "choice(adam, sgd)"}
    arguments = ["optimizer.lr=1e-9", "optimizer=choice(adam)", "+trainer.limit_train_batches=3"]
    space, fixed = search_space(params, arguments)
    assert space == {"optimizer": CategoricalDistribution(["adam"])}
    assert fixed == ["optimizer.lr=1e-9", "+trainer.limit_train_batches=3"]


def test_overrides_read_back_as_the_same_values():
    parser = OverridesParser.create()
    for value in ["adam", "textbook/sgd", "two words", "it's", 0.1, 3.0e-5, 64, None, True]:
        line = as_override("key", value)
        assert parser.parse_override(line).value() == value, line


def test_pruners_samplers_and_the_default_database(tmp_path):
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)
    assert make_pruner("median", {"n_startup_trials": 2})._n_startup_trials == 2
    with pytest.raises(UserError, match="median, hyperband, none"):
        make_pruner("asha")
    assert storage_url(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/optuna.db"
    assert storage_url("postgresql://db/optuna", tmp_path) == "postgresql://db/optuna"

    def draws(trials_so_far):
        study = optuna.create_study(sampler=make_sampler({"seed": 7}, trials_so_far))
        space = {"x": FloatDistribution(0, 1)}
        return [study.ask(space).params["x"] for _ in range(3)]

    assert draws(0) == draws(0)  # the same command, the same search
    assert not set(draws(0)) & set(draws(3))  # a continued study draws anew


def compose_with(extra_dir, overrides):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose("train", overrides=[f"hydra.searchpath=[file://{extra_dir}]",
                                               *overrides])  # fmt: skip
    finally:
        GlobalHydra.instance().clear()


def test_the_best_trial_composes_as_an_experiment(tmp_path):
    overrides = [
        "hparams_search=optuna",
        "trainer=cpu",
        "+trainer.limit_train_batches=3",
        "hydra.sweeper.n_trials=2",
        "optimizer=adamw",
        "optimizer.lr=0.0031",
        "data.batch_size=32",
    ]
    groups = {"optimizer", "trainer", "data", "model", "hparams_search", "experiment"}
    text = experiment_yaml(overrides, groups, header="Best trial 3")
    assert text.startswith("# @package _global_\n# Best trial 3\n")
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "best_experiment.yaml").write_text(text)
    cfg = compose_with(tmp_path, ["experiment=best_experiment"])
    assert cfg.optimizer.lr == 0.0031 and cfg.data.batch_size == 32
    assert cfg.optimizer._target_ == compose_with(tmp_path, ["optimizer=adamw"]).optimizer._target_
    assert cfg.trainer.limit_train_batches == 3 and cfg.trainer.accelerator == "cpu"
    assert "hparams_search" not in text and "n_trials" not in text


def test_a_search_inside_an_experiment_keeps_that_experiment(tmp_path):
    text = experiment_yaml(["experiment=optimizer_comparison", "optimizer=textbook/adam",
                            "optimizer.lr=0.002"], {"optimizer", "experiment"})  # fmt: skip
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "best_experiment.yaml").write_text(text)
    cfg = compose_with(tmp_path, ["experiment=best_experiment"])
    assert cfg.trainer.max_epochs == 10 and cfg.seed == 42  # from optimizer_comparison
    assert cfg.optimizer.lr == 0.002
    adam = compose_with(tmp_path, ["optimizer=textbook/adam"]).optimizer._target_
    assert cfg.optimizer._target_ == adam


def test_without_optuna_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    with pytest.raises(UserError, match=re.escape('pip install "cnnlab[optuna]"')):
        require_optuna()
