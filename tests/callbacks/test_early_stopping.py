"""callbacks.early_stopping: off by default; with a patience, a run stops, says so, and a
stopped run resumes and goes further."""

import json
import logging

import pytest

from cnnlab.callbacks.early_stopping import StopEarly, early_stopping
from cnnlab.cli.train import train
from cnnlab.errors import UserError

TINY = [
    "data.samples_per_class=10",  # 100 training digits: 2 steps an epoch
    "trainer.max_epochs=6",
    "trainer.enable_model_summary=false",
    "callbacks.tensorboard_images=null",
    "logger=none",
]
# No epoch can beat the first by a whole unit of accuracy: every later one counts as no
# improvement, so the stop comes exactly `patience` epochs after the first.
NEVER_BETTER = "callbacks.early_stopping.min_delta=1.0"


def test_off_by_default_and_a_patience_is_checked():
    assert early_stopping("val/acc", "max") == []
    (callback,) = early_stopping("val/map", "max", patience=2, min_delta=0.01)
    assert isinstance(callback, StopEarly) and callback.monitor == "val/map"
    assert callback.patience == 2 and callback.min_improvement == 0.01
    for bad in (0, -1, 2.5, True):
        with pytest.raises(UserError, match="callbacks.early_stopping.patience"):
            early_stopping("val/acc", "max", patience=bad)


@pytest.mark.slow  # a short run on 100 digits and its resumption: ~2 s
def test_stops_says_when_and_resumes_further(make_cfg, tmp_path, caplog):
    run_dir = tmp_path / "run"
    caplog.set_level(logging.INFO, logger="cnnlab")
    first = train(
        make_cfg([*TINY, "callbacks.early_stopping.patience=2", NEVER_BETTER], run_dir=run_dir)
    )
    assert first["stopped_early"] is True and first["epoch"] == 3  # epoch 1, then 2 without gain
    assert "Stopped early after epoch 3 of 6: val/acc has not improved by more than 1 for 2 " \
        "validation epochs" in caplog.text  # fmt: skip
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["stopped_early"] is True and saved["epoch"] == 3

    # The same run, resumed with more patience: its count of epochs without gain (2) carries
    # over, the stored patience does not, so it trains two more epochs and stops again.
    last = run_dir / "checkpoints" / "last.ckpt"
    again = [f"ckpt_path={last}", "callbacks.early_stopping.patience=4"]
    resumed = train(make_cfg([*TINY, *again, NEVER_BETTER], run_dir=run_dir))
    assert resumed["stopped_early"] is True and resumed["epoch"] == 5
    assert resumed["global_step"] == 5 * 2  # the steps go on from the first part's 6
    assert "Stopped early after epoch 5 of 6" in caplog.text
