"""cnnlab-train and cnnlab-eval run in-process on the bundled digits (the CLI is tested in
subprocesses in test_commands.py)."""

import json
import logging

import pytest
from hydra.core.global_hydra import GlobalHydra

from cnnlab.cli.app import typed_overrides
from cnnlab.cli.eval import evaluate
from cnnlab.cli.train import train
from cnnlab.errors import UserError
from cnnlab.factory.checkpoint import load_checkpoint
from cnnlab.factory.restore import config_from_checkpoint
from cnnlab.optim.schedules import multiplier
from cnnlab.tasks.table import TASKS

from composing import compose_run

SHORT = ["trainer.max_epochs=2", "trainer.enable_model_summary=false"]
STEPS_PER_EPOCH = 20  # 1,257 training digits in batches of 64


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One two-epoch run, made once for the tests of this file, which only read it."""
    root = tmp_path_factory.mktemp("short_run")
    metrics = train(compose_run(SHORT, "train", root / "first", root / "data"))
    GlobalHydra.instance().clear()
    return root / "first", metrics


def test_metrics_json_has_the_contract_names(short_run):
    run_dir, metrics = short_run
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("train/loss", "lr", *TASKS["classification"].metrics):  # the contract's names
        assert 0 <= saved[key] < 10, key
    assert saved["epoch"] == 2 and saved["global_step"] == 2 * STEPS_PER_EPOCH
    assert saved["test/acc"] == pytest.approx(metrics["test/acc"])
    assert saved["test/acc"] > 0.5  # two epochs are far from the 0.97 of the full run
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "checkpoints").glob("best-epoch*-acc*.ckpt"))) == 1


@pytest.mark.slow  # two short runs: ~1 s
def test_same_seed_same_metrics(short_run, make_cfg, tmp_path):
    _, first = short_run
    again = train(make_cfg(SHORT, run_dir=tmp_path / "again"))
    assert again == first


def test_eval_reproduces_the_test_metrics(short_run, make_cfg, tmp_path):
    run_dir, metrics = short_run
    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    cfg = make_cfg([f"ckpt_path={best}"], config_name="eval", run_dir=tmp_path / "eval")
    result = evaluate(cfg)
    for key in ("test/acc", "test/loss", "test/acc_top5"):
        assert result[key] == pytest.approx(metrics[key], abs=1e-4)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-4)


def test_overrides_typed_now_apply_on_the_stored_config(short_run, make_cfg, tmp_path):
    run_dir, _ = short_run
    last = run_dir / "checkpoints" / "last.ckpt"
    cfg = make_cfg(
        [f"ckpt_path={last}", "data.batch_size=7", "model=resnet18"], "eval", tmp_path / "ev2"
    )
    merged = config_from_checkpoint(cfg, load_checkpoint(str(last)), typed_overrides(cfg))
    assert merged.data.batch_size == 7  # typed now
    assert merged.model._target_.endswith("resnet18")  # a group override replaces the group
    assert merged.trainer.max_epochs == 2  # from the stored config, not the default 20
    assert merged.paths.output_dir == str(tmp_path / "ev2")  # this run's folder, not the old one


@pytest.mark.parametrize(
    "scheduler",  # cosine, the default, in the fast tier; the others about 1.2 s each
    [pytest.param(s, marks=pytest.mark.slow) for s in ("none", "step")]
    + ["cosine", pytest.param("onecycle", marks=pytest.mark.slow)],
)
def test_resume_for_longer_rebuilds_every_schedule(make_cfg, tmp_path, caplog, scheduler):
    one = [f"scheduler={scheduler}", "trainer.max_epochs=1", "trainer.enable_model_summary=false"]
    if scheduler == "step":
        one.append("scheduler.step_size=1")
    train(make_cfg(one, run_dir=tmp_path / "a"))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"

    caplog.set_level(logging.INFO)
    resumed = make_cfg([f"ckpt_path={last}", "trainer.max_epochs=3"], run_dir=tmp_path / "b")
    metrics = train(resumed)

    assert metrics["epoch"] == 3 and metrics["global_step"] == 3 * STEPS_PER_EPOCH
    assert "rebuilt for 60 total steps" in caplog.text
    assert "planned 20" in caplog.text
    # the rate at the last step follows the 3-epoch schedule, read from the stored config
    kwargs = {"step_size": 1} if scheduler == "step" else {}
    if scheduler == "onecycle":
        kwargs = {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4}
    if scheduler == "cosine":
        kwargs = {"min_lr_ratio": 0.0}
    expected = 0.002 * multiplier(
        3 * STEPS_PER_EPOCH - 1, name=scheduler, total_steps=60, steps_per_epoch=20, **kwargs
    )
    assert metrics["lr"] == pytest.approx(expected, rel=1e-4, abs=1e-12)


@pytest.mark.slow  # two ResNet-18 runs
def test_resume_keeps_the_stored_model_and_optimizer(make_cfg, tmp_path):
    first = [
        "model=resnet18",
        "optimizer=sgd",
        "optimizer.lr=0.05",
        "trainer.max_epochs=1",
        "data.batch_size=128",
        "data.samples_per_class=26",  # 260 training digits: 3 steps an epoch
        "trainer.enable_model_summary=false",
    ]
    train(make_cfg(first, run_dir=tmp_path / "a"))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    cfg = make_cfg([f"ckpt_path={last}", "trainer.max_epochs=2"], run_dir=tmp_path / "b")
    metrics = train(cfg)
    # loading resnet18 weights worked: the model came from the stored config, not the default
    assert metrics["global_step"] == 2 * 3  # 260 / 128 -> 3 steps per epoch


def test_eval_refuses_weights_of_another_model(short_run, make_cfg, tmp_path):
    run_dir, _ = short_run
    last = run_dir / "checkpoints" / "last.ckpt"
    cfg = make_cfg([f"ckpt_path={last}", "model=resnet18"], "eval", tmp_path / "ev3")
    with pytest.raises(UserError, match="weights of another model .*net.conv1.weight.*resnet18"):
        evaluate(cfg)
    assert not (tmp_path / "ev3" / "metrics.json").exists()
