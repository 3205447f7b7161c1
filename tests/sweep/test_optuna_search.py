"""cnnlab-train -m hparams_search=optuna, as a user runs it: the study persists in the sweep
folder's optuna.db, a second command continues it, a trial that lags is pruned, and the best
trial's config trains.

The commands run through cnnlab-train's own entry point with its command line, in this process:
four subprocesses cost about 20 s more, almost all of it importing torch and Lightning again
(tests/cli/test_commands.py runs the console scripts themselves).
"""

import json
import logging
import os
import socket
import subprocess
import sys

import optuna
import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

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


LOGGERS = ("", "hydra", "cnnlab", "lightning", "lightning.pytorch")


def cnnlab_train(capfd, *args: str, status: int = 0) -> str:
    """Run ``cnnlab-train ARGS`` (its entry point, in this process) to its end, which must come
    with exit status ``status``; return what it printed (stdout, then stderr). Hydra's global
    state and the loggers' handlers are put back as they were."""
    from cnnlab.cli.train import main

    argv = sys.argv[:]
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level)
             for name in LOGGERS}  # fmt: skip
    disabled = {name: getattr(logger, "disabled", False)
                for name, logger in logging.root.manager.loggerDict.items()}  # fmt: skip
    sys.argv = ["cnnlab-train", *args]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    finally:
        captured = capfd.readouterr()
        out = captured.out + captured.err
        sys.argv[:] = argv
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
        for name, (handlers, level) in saved.items():
            logger = logging.getLogger(name)
            for handler in logger.handlers[:]:
                if handler not in handlers:
                    logger.removeHandler(handler)
                    handler.close()
            logger.handlers[:] = handlers
            logger.setLevel(level)
        for name, was in disabled.items():
            logging.getLogger(name).disabled = was
    assert code == status, f"cnnlab-train {' '.join(args)} exited with {code}:\n{out[-4000:]}"
    return out


def search(capfd, sweep, *extra, status: int = 0):
    return cnnlab_train(capfd, "-m", *SEARCH, f"hydra.sweep.dir={sweep}", *extra, status=status)


@pytest.mark.slow  # three searches (5 trials) and one training run: about 8 s
def test_a_search_persists_continues_prunes_and_its_best_config_trains(tmp_path, capfd):
    sweep = tmp_path / "sweep"
    search(capfd, sweep)
    out = search(capfd, sweep)  # the same command again: two more trials, same study
    assert "Optuna study 'train'" in out and "2 trials before" in out
    assert "0 skipped, 0 resumed, 2 started, 2 from earlier commands" in out
    status = json.loads((sweep / "sweep_status.json").read_text())["jobs"]
    assert [(j["job"], j["state"]) for j in status] == [
        (0, "earlier"), (1, "earlier"), (2, "started"), (3, "started")
    ]  # fmt: skip

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
    out = search(capfd, sweep, "hydra.sweeper.n_trials=1", "optimizer.lr=1e-9",
                 "+hydra.sweeper.pruner_args.n_startup_trials=4")  # fmt: skip
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
    cnnlab_train(capfd, "--config-dir", str(sweep), "experiment=best_experiment",
                 f"hydra.run.dir={run_dir}")  # fmt: skip
    trained = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert trained.optimizer.lr == pytest.approx(best.params["optimizer.lr"])
    assert trained.data.batch_size == best.params["data.batch_size"]
    assert trained.trainer.max_epochs == 2 and trained.trainer.limit_train_batches == 8
    assert "test/acc" in json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow  # a one-epoch run and a two-trial search: about 4 s
def test_a_trial_left_running_by_a_killed_search_is_resumed(tmp_path, capfd):
    from cnnlab.sweep.search_space import search_space
    from cnnlab.sweep.study import open_study, storage_url

    sweep = tmp_path / "sweep"
    # What a search killed in trial 0's second epoch leaves: the trial running in the study,
    # its command's process gone, its folder with the checkpoint of epoch 1 and no metrics.json.
    _, fixed = search_space(None, [*SEARCH, "optimizer.lr=0.005", "data.batch_size=64"])
    sweep.mkdir()
    study = open_study("train", storage_url(None, sweep), "maximize")
    trial = study.ask({})
    gone = subprocess.Popen(["true"])  # a process that has ended: its pid is free
    gone.wait()
    trial.set_user_attr("overrides", fixed)
    trial.set_user_attr("command", {"host": socket.gethostname(), "pid": gone.pid,
                                    "in_process": True})  # fmt: skip
    cnnlab_train(capfd, *fixed, "trainer.max_epochs=1", f"hydra.run.dir={sweep / '0'}")
    (sweep / "0" / "metrics.json").unlink()

    out = search(capfd, sweep, "hydra.sweeper.n_trials=1")
    assert "Trials [0] were left running by a command that was killed" in out
    assert "Sweep job 0 resumed" in out
    study = optuna.load_study(study_name="train", storage=storage_url(None, sweep))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    resumed = json.loads((sweep / "0" / "metrics.json").read_text())
    assert resumed["epoch"] == 2 and study.trials[0].value == pytest.approx(resumed["val/acc"])
    assert study.trials[0].intermediate_values.keys() == {1}  # the epoch run in the sweep
    assert study.trials[1].user_attrs["command"]["pid"] == os.getpid()


@pytest.mark.slow  # a composed config, no training: under a second
def test_a_mistake_in_the_search_ends_with_its_one_paragraph(tmp_path, capfd):
    out = search(capfd, tmp_path / "sweep", "hydra.sweeper.pruner=asha", status=2)
    assert "hydra.sweeper.pruner=asha: choose one of median, hyperband, none." in out
    assert "Traceback" not in out and not (tmp_path / "sweep" / "optuna.db").exists()
