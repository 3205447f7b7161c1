"""Config -> objects. The only place where ``hydra.utils.instantiate`` is called."""

import inspect
import logging
import warnings
from pathlib import Path

import lightning.pytorch as pl
from hydra.errors import InstantiationException
from hydra.utils import get_class, get_method
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from cnnlab.callbacks.finetune import Finetune
from cnnlab.callbacks.run_config import StoreConfig
from cnnlab.cli.pretrained import active_finetune, load_configured_weights
from cnnlab.errors import UserError
from cnnlab.models.registry import small_input_for
from cnnlab.models.speed import apply_speed_switches
from cnnlab.tasks import TASK_MODULES

log = logging.getLogger("cnnlab")

# Lightning's top-level package adds a console handler of its own; Hydra's root handlers
# already print to the console and to train.log, so drop it rather than print every line twice.
logging.getLogger("lightning").handlers.clear()
# A small in-memory dataset loads fastest in the main process; Lightning would advise workers.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# A resumed run writes a run folder of its own, so its checkpoint folder differs by design.
warnings.filterwarnings("ignore", ".*The dirpath has changed from.*")


def instantiate(config, *args, **kwargs):
    """``hydra.utils.instantiate``, but a UserError raised by the target surfaces as itself
    (Hydra wraps it in an InstantiationException, which would hide our one-paragraph message)."""
    try:
        return hydra_instantiate(config, *args, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, UserError):
            raise e.__cause__ from None
        raise


def build_datamodule(
    data_cfg: DictConfig, recipe: DictConfig | None = None
) -> tuple[str, pl.LightningDataModule]:
    """The datamodule and the task its config names (``task`` is not a constructor argument);
    a classification datamodule takes the ``recipe``'s augmentation policy and random erasing."""
    kwargs = OmegaConf.to_container(data_cfg, resolve=True)
    task = kwargs.pop("task", "classification")
    if task not in TASK_MODULES:
        raise UserError(
            f"data.task={task!r} is not a task cnnlab knows; "
            f"choose one of {', '.join(TASK_MODULES)}."
        )
    if recipe is not None:
        kwargs["color_jitter"] = recipe.get("color_jitter", 0.0)
    if recipe is not None and task == "classification":
        kwargs.update(augment_policy=recipe.augment, random_erasing=recipe.random_erasing)
    elif recipe is not None:
        check_recipe_task(recipe, task)
    return task, instantiate(kwargs)


# Recipe fields that only a classification run can use, with the value that leaves them off.
CLASSIFICATION_ONLY = {
    "augment": "basic",
    "random_erasing": 0.0,
    "mixup_alpha": 0.0,
    "cutmix_alpha": 0.0,
    "tta": "none",
}


def check_recipe_task(recipe: DictConfig, task: str) -> None:
    """Refuse classification-only recipe ingredients on another task, naming them."""
    wrong = [f"recipe.{k}={recipe.get(k)}" for k, off in CLASSIFICATION_ONLY.items()
             if recipe.get(k, off) != off]  # fmt: skip
    if wrong:
        raise UserError(
            f"{', '.join(wrong)} applies to classification only; {task} runs bring their own "
            "augmentation. Leave them at recipe=plain's values (recipe.ema_decay, "
            "recipe.color_jitter and recipe.label_smoothing work for every task)."
        )


def model_task(target: str) -> str:
    """The task a model builder serves, from its module (``cnnlab.models.detection.*``)."""
    for task in ("detection", "segmentation"):
        if target.startswith(f"cnnlab.models.{task}"):
            return task
    return "classification"


def models_for_task(task: str) -> list[str]:
    """The names of the model configs (configs/model/*.yaml) whose builder serves ``task``."""
    from cnnlab.cli.app import config_dir

    names = []
    for path in sorted((Path(config_dir()) / "model").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_", "")
        if model_task(target) == task:
            names.append(path.stem)
    return names


# The data set that runs on a fresh machine, per task: what a refused model is pointed to.
BUNDLED_DATA = {
    "classification": "digits",
    "detection": "shapes_detection",
    "segmentation": "shapes_segmentation",
}


def check_task(model_cfg: DictConfig, task: str) -> None:
    """Refuse a model of another task than the data's, naming the models that fit."""
    serves = model_task(model_cfg.get("_target_", ""))
    if serves != task:
        fits = ", ".join(models_for_task(task)) or "(none yet)"
        bundled = BUNDLED_DATA.get(serves)
        other_data = f" Or give it {serves} data: data={bundled} is bundled." if bundled else ""
        raise UserError(
            f"The model {model_cfg._target_.rsplit('.', 1)[-1]} is a {serves} model, and the "
            f"data (data.task={task}) is for {task}. Models for {task}: {fits} (model=NAME)."
            + other_data
        )


def build_network(
    model_cfg: DictConfig,
    num_classes: int,
    in_channels: int,
    image_size: int | None,
    finetune: DictConfig | None = None,
    load_weights: bool = True,
) -> nn.Module:
    """The network of ``model_cfg`` for these sizes, with its pretrained weights when asked.

    A ``small_input`` left null is decided by the image size (``small_input_for``). A
    ``backbone`` node (detection and segmentation models) is built first, as a classification
    network with its own ``weights``, and handed to the model's builder. ``weights`` goes to a
    builder that takes it (torchvision's detectors); otherwise cnnlab loads it
    (``cli/pretrained.py``), as it does ``finetune.weights``; ``load_weights=False`` (resume,
    eval, summaries) builds with fresh weights only. ``channels_last`` and ``compile`` are
    cnnlab's speed switches, applied to the built network (``models/speed.py``).
    """
    kwargs = OmegaConf.to_container(model_cfg, resolve=True)
    speed = {key: kwargs.pop(key, False) for key in ("channels_last", "compile")}
    target = kwargs["_target_"]
    takes = inspect.signature(get_method(target)).parameters
    weights = None if "weights" in takes else kwargs.pop("weights", None)
    if not load_weights:  # a builder that loads weights itself builds without them
        kwargs.update({key: None for key in ("weights", "weights_backbone") if key in takes})
    if "small_input" in kwargs and kwargs["small_input"] is None:
        kwargs["small_input"] = small_input_for(image_size)
        log.info(
            "model.small_input=%s, chosen from the %s-pixel images (small layout up to 64).",
            str(kwargs["small_input"]).lower(),
            image_size,
        )
    if isinstance(kwargs.get("backbone"), dict):
        kwargs["backbone"] = build_network(
            OmegaConf.create(kwargs["backbone"]),
            1000,  # the backbone's own classifier is not used; 1,000 fits ImageNet weights
            in_channels,
            image_size,
            load_weights=load_weights,
        )
    net = instantiate(kwargs, num_classes=num_classes, in_channels=in_channels)
    if load_weights:
        load_configured_weights(net, target.rsplit(".", 1)[-1], weights, finetune)
    return apply_speed_switches(net, **speed)


def build_module(
    cfg: DictConfig, task: str, datamodule: pl.LightningDataModule, load_weights: bool = True
) -> pl.LightningModule:
    """Network, optimizer and scheduler factories, wrapped in the task's LightningModule.

    Pretrained weights (``model.weights``, ``finetune.weights``) are loaded when
    ``load_weights``; a resumed run or an evaluation takes its weights from the checkpoint.
    """
    check_task(cfg.model, task)
    finetune = active_finetune(cfg.get("finetune"))
    if finetune and task != "classification":
        raise UserError(
            f"finetune={finetune.strategy} applies to classification models. For {task}, start "
            "from pretrained weights with model.weights=... (torchvision's) or "
            "model.backbone.weights=IMAGENET1K_V1, and freeze early stages with "
            "model.trainable_layers=N."
        )
    net = build_network(
        cfg.model,
        datamodule.num_classes,
        datamodule.in_channels,
        getattr(datamodule, "image_size", None),
        finetune,
        load_weights,
    )
    module_cls = get_class(TASK_MODULES[task])
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    extra = {"backbone_lr_scale": finetune.backbone_lr_scale} if finetune else {}
    recipe = cfg.get("recipe")
    if recipe is not None and task == "classification":
        extra.update(mixup_alpha=recipe.mixup_alpha, cutmix_alpha=recipe.cutmix_alpha,
                     tta=recipe.tta)  # fmt: skip
    return module_cls(
        net=net,
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
        num_classes=datamodule.num_classes,
        **cfg.get("module", {}),
        **extra,
    )


def build_callbacks(
    callbacks_cfg: DictConfig | None,
    config: dict | None = None,
    finetune_cfg: DictConfig | None = None,
    nan_guard_cfg: DictConfig | None = None,
) -> list[pl.Callback]:
    """Every callback of the ``callbacks`` group (an entry may build several, as
    ``model_checkpoint`` does), one that stores ``config`` in checkpoints, the fine-tuning
    strategy's, and the NaN guard (``nan_guard``; null: none)."""
    callbacks = []
    for c in (callbacks_cfg or {}).values():
        if c is None:
            continue
        built = instantiate(c)
        callbacks.extend(built if isinstance(built, list | tuple) else [built])
    if config is not None:
        callbacks.append(StoreConfig(config))
    if active_finetune(finetune_cfg):
        callbacks.append(
            Finetune(finetune_cfg.strategy, finetune_cfg.freeze_epochs, finetune_cfg.train_bn)
        )
    if nan_guard_cfg is not None and nan_guard_cfg.get("policy") is not None:
        from cnnlab.callbacks.nan_guard import NanGuard

        callbacks.append(NanGuard(**OmegaConf.to_container(nan_guard_cfg, resolve=True)))
    return callbacks


def build_recipe_callbacks(recipe: DictConfig | None) -> list:
    """The callbacks a recipe asks for: the weights' moving average (``recipe.ema_decay``)."""
    if recipe is None or recipe.get("ema_decay") is None:
        return []
    from cnnlab.callbacks.ema import EMA

    return [EMA(decay=recipe.ema_decay, every=recipe.get("ema_every", 1))]


def build_loggers(logger_cfg: DictConfig | None, resume_step: int | None = None) -> list:
    """The loggers of the ``logger`` group. ``resume_step`` (the restored global step of a
    resumed run) makes TensorBoard drop the points that an interrupted run wrote from that step
    on (``purge_step``), so the curves continue without doubled steps."""
    loggers = []
    for c in (logger_cfg or {}).values():
        if c is None:
            continue
        extra = {}
        if resume_step is not None and c.get("_target_", "").endswith("TensorBoardLogger"):
            extra["purge_step"] = int(resume_step)
        loggers.append(instantiate(c, **extra))
    return loggers


def build_trainer(trainer_cfg: DictConfig, callbacks: list, loggers: list) -> pl.Trainer:
    """The Trainer, saving checkpoints atomically in a worker thread (``BackgroundCheckpointIO``
    around ``AtomicCheckpointIO``) unless the config names a checkpoint plugin of its own
    (``+trainer.plugins=[...]``)."""
    from lightning.pytorch.plugins.io import CheckpointIO

    from cnnlab.callbacks.atomic_checkpoint import BackgroundCheckpointIO

    given = trainer_cfg.get("plugins")
    given = [] if given is None else instantiate(given)
    plugins = list(given) if isinstance(given, list | tuple | ListConfig) else [given]
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(BackgroundCheckpointIO())
    return instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False, plugins=plugins)


def best_checkpoint(trainer: pl.Trainer) -> str:
    """The path of the best checkpoint by a monitored metric, or "" when none was saved."""
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "monitor", None) and cb.best_model_path:
            return cb.best_model_path
    return ""
