"""Every config of every group composes, and its objects instantiate."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cnnlab.factory import build
from cnnlab.factory.configs import config_dir

GROUPS = Path(config_dir())


def choices(group: str) -> list[str]:
    """The group's choices as users type them, sub-folders included (``textbook/sgd``)."""
    folder = GROUPS / group
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.yaml"))


def test_every_group_has_configs():
    for group in ("data", "model", "optimizer", "scheduler", "trainer", "logger", "callbacks"):
        assert choices(group), group


@pytest.mark.parametrize("name", choices("data"))
def test_data_configs_instantiate(make_cfg, name):
    cfg = make_cfg([f"data={name}"])
    task, dm = build.build_datamodule(cfg.data)
    assert task == cfg.data.task
    assert dm.batch_size == cfg.data.batch_size


# backbone/NAME include model=NAME whole (tests/models/test_backbone_configs.py holds them equal)
@pytest.mark.parametrize("name", [c for c in choices("model") if not c.startswith("backbone/")])
def test_model_configs_instantiate(make_cfg, name):
    cfg = make_cfg([f"model={name}"])
    if build.model_task(cfg.model._target_) != "classification":
        pytest.skip("detection and segmentation models are built in their own tests")
    net = build.build_network(cfg.model, num_classes=7, in_channels=1, image_size=32)
    assert getattr(net, "small_input", True)  # a null small_input follows the 32-pixel images
    net.eval()
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("name", choices("optimizer"))
def test_optimizer_configs_instantiate(make_cfg, name):
    cfg = make_cfg([f"optimizer={name}"])
    opt = instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.zeros(3))])
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups[0]["lr"] == cfg.optimizer.lr


@pytest.mark.parametrize("name", choices("scheduler"))
def test_scheduler_configs_instantiate(make_cfg, name):
    cfg = make_cfg([f"scheduler={name}"])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=0.1)
    sched = instantiate(cfg.scheduler)(opt, total_steps=100, steps_per_epoch=10)
    assert 0 < opt.param_groups[0]["lr"] <= 0.1
    opt.step()
    sched.step()


@pytest.mark.parametrize("name", choices("trainer"))
def test_trainer_configs_instantiate(make_cfg, name):
    cfg = make_cfg([f"trainer={name}"])
    if cfg.trainer.accelerator == "gpu":
        pytest.skip("needs a GPU")  # composing it is checked above; building it needs CUDA
    trainer = build.build_trainer(cfg.trainer, callbacks=[], loggers=[])
    assert trainer.max_epochs == cfg.trainer.max_epochs


# logger=mlflow makes an MLflow store: tests/loggers/test_mlflow.py builds it, with a real one
@pytest.mark.parametrize("name", [n for n in choices("logger") if n != "mlflow"])
def test_logger_configs_instantiate(make_cfg, name):
    cfg = make_cfg([f"logger={name}"])
    loggers = build.build_loggers(cfg.get("logger"))
    assert len(loggers) == {"none": 0, "many": 2}.get(name, 1)


@pytest.mark.parametrize("name", choices("callbacks"))
def test_callback_configs_instantiate(make_cfg, name):
    cfg = make_cfg([f"callbacks={name}"])
    callbacks = build.build_callbacks(cfg.get("callbacks"), config={})
    assert len(callbacks) >= 1  # the config-storing callback at least


@pytest.mark.parametrize("name", choices("experiment") + choices("debug"))
def test_experiment_and_debug_configs_compose(make_cfg, name):
    group = "experiment" if name in choices("experiment") else "debug"
    cfg = make_cfg([f"{group}={name}"])
    assert cfg.model._target_.startswith("cnnlab.models.")


def test_eval_config_composes_with_the_train_tree(make_cfg):
    cfg = make_cfg(["ckpt_path=x.ckpt", "data.batch_size=7"], config_name="eval")
    assert cfg.task_name == "eval" and cfg.data.batch_size == 7


def test_any_key_can_be_overridden(make_cfg):
    cfg = make_cfg(
        [
            "model=resnet18",
            "optimizer=sgd",
            "optimizer.lr=0.05",
            "trainer.max_epochs=2",
            "data.batch_size=128",
            "+trainer.gradient_clip_val=1.0",
        ]
    )
    assert cfg.model._target_.endswith("resnet18")
    assert cfg.optimizer.lr == 0.05 and cfg.trainer.max_epochs == 2
    assert cfg.data.batch_size == 128 and cfg.trainer.gradient_clip_val == 1.0


def test_unknown_choice_lists_the_available_ones(make_cfg):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as err:
        make_cfg(["model=nosuchmodel"])
    assert "lenet" in str(err.value) and "resnet18" in str(err.value)


def test_a_user_error_inside_a_target_surfaces_unwrapped(make_cfg):
    from cnnlab.errors import UserError

    cfg = make_cfg(["model=resnet18", "model.norm=foo"])
    _, dm = build.build_datamodule(cfg.data)
    with pytest.raises(UserError, match="torch, textbook"):
        build.build_module(cfg, "classification", dm)


@pytest.mark.parametrize(
    ("arm", "experiment"),
    [
        ("rcnn", "detection_rcnn"),
        ("fast_rcnn", "detection_fast_rcnn"),
        ("fasterrcnn", "detection_shapes"),
        ("yolo", "detection_yolo"),
    ],
)
def test_each_lineage_arm_trains_as_its_own_experiment(make_cfg, arm, experiment):
    alone = make_cfg([f"experiment={experiment}"])
    in_sweep = make_cfg(["experiment=detection_lineage", f"lineage={arm}"])
    for part in ("data", "model", "optimizer", "scheduler", "trainer"):
        assert in_sweep[part] == alone[part], part
    lineage = OmegaConf.load(GROUPS / "experiment" / "detection_lineage.yaml")
    assert arm in lineage.hydra.sweeper.params.lineage.split(",")
