"""The table of tasks: every row names code that exists, and every config's task is a row."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
from omegaconf import OmegaConf

from cnnlab.errors import UserError
from cnnlab.factory.configs import config_dir, model_task, models_for_task
from cnnlab.tasks.table import TASKS, checkpoint_name, get_task, load

CONFIGS = Path(config_dir())


@pytest.mark.parametrize("name", list(TASKS))
def test_each_row_names_code_that_exists(name):
    task = TASKS[name]
    assert issubclass(load(task.module), pl.LightningModule)
    for path in (task.predictor, task.drawer, task.analysis):
        assert path is None or callable(load(path))
    assert task.mode in ("min", "max")
    assert task.monitor.startswith("val/") and task.headline.startswith("test/")
    assert {task.monitor, task.headline} <= set(task.metrics)
    assert set(task.curves[1]) <= set(task.metrics) | {"train/loss", "train/acc"}
    assert (CONFIGS / "data" / f"{task.data}.yaml").is_file()  # the bundled data exists
    assert OmegaConf.load(CONFIGS / "data" / f"{task.data}.yaml").task == name
    assert models_for_task(name), f"no model config serves {name}"


def test_every_data_and_model_config_names_a_task_of_the_table():
    for path in sorted((CONFIGS / "data").glob("*.yaml")):
        assert OmegaConf.load(path).get("task") in TASKS, path.name
    for path in sorted((CONFIGS / "model").glob("*.yaml")):
        assert model_task(OmegaConf.load(path)._target_) in TASKS, path.name


def test_a_model_task_is_what_its_family_file_declares():
    assert model_task("cnnlab.models.resnet.resnet18") == "classification"
    assert model_task("cnnlab.models.detection.fasterrcnn") == "detection"
    assert model_task("cnnlab.models.segmentation.fcn8s") == "segmentation"
    assert model_task("cnnlab.models.segmentation_torchvision.deeplabv3_resnet50") == (
        "segmentation"
    )


def test_checkpoint_names_follow_the_monitor():
    assert checkpoint_name("detection") == "best-epoch{epoch:03d}-map{val/map:.4f}"
    assert checkpoint_name("classification") == "best-epoch{epoch:03d}-acc{val/acc:.4f}"


def test_an_unknown_task_is_refused_with_the_known_ones():
    with pytest.raises(UserError, match="classification, detection, segmentation"):
        get_task("keypoints")
