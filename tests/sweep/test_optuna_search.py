"""cnnlab-train -m hparams_search=optuna, as a user runs it: the study persists in the sweep
folder's optuna.db, a second command continues it, a trial that lags is pruned, and the best
trial's config trains."""

import json

import optuna
import pytest
from omegaconf import OmegaConf

from commands import run_command

# A search space where every trial learns (Adam at 3e-3..1e-2 reaches well above chance in 8
# batches) and a setting that cannot learn (lr 1e-9): the pruner must tell them apart.
SEARCH = [
    "hparams_search=optuna",
    "hydra.sweeper.n_trials=2",
    "optimizer=adam",
    "optimizer.weight_decay=0.0",
    "optimizer.lr=tag(log, interval(3e-3, 1e-2))",
    "data.batch_size=choice(64, 128)",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=8",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=1",
    "callbacks.tensorboard_images=null",
    "logger=none",
]


def search(sweep, *extra, cwd):
    proc = run_command("cnnlab-train", "-m", *SEARCH, f"hydra.sweep.dir={sweep}", *extra,
                       cwd=cwd, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


@pytest.mark.slow  # three searches and one training run, each its own command: about 40 s
def test_a_search_persists_continues_prunes_and_its_best_config_trains(tmp_path):
    sweep = tmp_path / "sweep"
    search(sweep, cwd=tmp_path)
    out = search(sweep, cwd=tmp_path)  # the same command again: two more trials, same study
    assert "Optuna study 'train'" in out and "2 trials before" in out

    study = optuna.load_study(study_name="train", storage=f"sqlite:///{sweep}/optuna.db")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [t.number for t in done] == [0, 1, 2, 3]
    assert len({tuple(sorted(t.params.items())) for t in done}) == 4  # no draw repeated
    for t in done:  # each trial's job ran in the folder named by its number, with its values
        job = OmegaConf.load(sweep / str(t.number) / ".hydra" / "config.yaml")
        assert job.optimizer.lr == pytest.approx(t.params["optimizer.lr"])
        assert job.data.batch_size == t.params["data.batch_size"]
        assert sorted(t.intermediate_values) == [0, 1]  # val/acc of each epoch, reported
        metrics = json.loads((sweep / str(t.number) / "metrics.json").read_text())
        assert t.value == pytest.approx(metrics["val/acc"]) and "test/acc" in metrics
        assert min(t.intermediate_values.values()) > 0.25  # all learn (chance: 0.1)

    # A third command whose trial cannot learn: below the median at epoch 0, it is pruned there.
    out = search(sweep, "hydra.sweeper.n_trials=1", "optimizer.lr=1e-9",
                 "+hydra.sweeper.pruner_args.n_startup_trials=4", cwd=tmp_path)  # fmt: skip
    assert "Trial 4 pruned at epoch 0" in out
    study = optuna.load_study(study_name="train", storage=f"sqlite:///{sweep}/optuna.db")
    pruned = study.trials[4]
    assert pruned.state == optuna.trial.TrialState.PRUNED
    metrics = json.loads((sweep / "4" / "metrics.json").read_text())
    assert metrics["pruned_at_epoch"] == 0 and metrics["epoch"] == 1  # one epoch of two
    assert "test/acc" not in metrics  # not tested

    results = OmegaConf.load(sweep / "optimization_results.yaml")
    best = study.best_trial
    assert results.best_trial == best.number and results.best_value == best.value
    assert dict(results.trials)["complete"] == 4 and dict(results.trials)["pruned"] == 1
    for plot in ("optuna_history.png", "optuna_importance.png", "optuna_parallel.png"):
        assert (sweep / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    assert (sweep / "best_experiment.yaml").read_text() == (
        sweep / "experiment" / "best_experiment.yaml"
    ).read_text()

    run_dir = tmp_path / "best"
    proc = run_command("cnnlab-train", "--config-dir", str(sweep), "experiment=best_experiment",
                       f"hydra.run.dir={run_dir}", cwd=tmp_path, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    trained = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert trained.optimizer.lr == pytest.approx(best.params["optimizer.lr"])
    assert trained.data.batch_size == best.params["data.batch_size"]
    assert trained.trainer.max_epochs == 2 and trained.trainer.limit_train_batches == 8
    assert "test/acc" in json.loads((run_dir / "metrics.json").read_text())
