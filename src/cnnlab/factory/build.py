"""Config -> objects. The only place where ``hydra.utils.instantiate`` is called."""

import inspect
import logging

import lightning.pytorch as pl
from hydra.errors import InstantiationException
from hydra.utils import get_method
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from cnnlab.callbacks.finetune import Finetune
from cnnlab.callbacks.run_config import StoreConfig
from cnnlab.errors import UserError
from cnnlab.factory.configs import model_task, models_for_task
from cnnlab.factory.weights import active_finetune, load_configured_weights
from cnnlab.models.crf import CRFSettings, densecrf_module
from cnnlab.models.parts import choose_head
from cnnlab.models.registry import small_input_for
from cnnlab.models.speed import apply_speed_switches
from cnnlab.models.textbook import choose_layers
from cnnlab.tasks.table import RECIPE_OFF, TASKS, get_task, load

log = logging.getLogger("cnnlab")


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
    it takes the ``recipe``'s colour jitter, and the recipe keys its task's row sends to data."""
    kwargs = OmegaConf.to_container(data_cfg, resolve=True)
    task = kwargs.pop("task", "classification")
    get_task(task)  # a task cnnlab does not know is refused here
    check_balance_task(kwargs, task)
    if recipe is not None:
        kwargs["color_jitter"] = recipe.get("color_jitter", 0.0)
        check_recipe_task(recipe, task)
        kwargs.update(recipe_kwargs(recipe, task, "data"))
    return task, instantiate(kwargs)


def recipe_kwargs(recipe: DictConfig | None, task: str, part: str) -> dict:
    """The recipe values the task's row sends to ``part`` ("data" or "module"), by keyword."""
    sent = {}
    for key, target in get_task(task).recipe.items():
        where, _, keyword = target.partition(".")
        if recipe is not None and where == part:
            sent[keyword] = recipe.get(key, RECIPE_OFF[key])
    return sent


def check_balance_task(kwargs: dict, task: str) -> None:
    """``data.balance`` (sampler or loss) weighs classes: refused for detection and
    segmentation data, whose configs have no such key (a ``none`` added by hand is dropped)."""
    if task == "classification" or "balance" not in kwargs:
        return
    balance = kwargs.pop("balance")
    if balance not in (None, "none"):
        raise UserError(
            f"data.balance={balance} balances the classes of classification data; this data is "
            f"for {task} (data.task={task}). Leave data.balance out."
        )


def check_recipe_task(recipe: DictConfig, task: str) -> None:
    """Refuse recipe ingredients the task does not take (set to other than their off value)."""
    takes = get_task(task).recipe
    wrong = [f"recipe.{k}={recipe.get(k)}" for k, off in RECIPE_OFF.items()
             if k not in takes and recipe.get(k, off) != off]  # fmt: skip
    if wrong:
        users = [t.name for t in TASKS.values() if set(t.recipe) & set(RECIPE_OFF)]
        raise UserError(
            f"{', '.join(wrong)} applies to {' and '.join(users)} only; {task} runs bring their "
            "own augmentation. Leave them at recipe=plain's values (recipe.ema_decay, "
            "recipe.color_jitter and recipe.label_smoothing work for every task)."
        )


def check_task(model_cfg: DictConfig, task: str) -> None:
    """Refuse a model of another task than the data's, naming the models that fit."""
    serves = model_task(model_cfg.get("_target_", ""))
    if serves != task:
        fits = ", ".join(models_for_task(task)) or "(none yet)"
        bundled = TASKS[serves].data if serves in TASKS else None
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
    (``factory/weights.py``), as it does ``finetune.weights``; ``load_weights=False`` (resume,
    eval, summaries) builds with fresh weights only. ``layers=textbook`` swaps cnnlab.nn's
    convolution, pooling and batch norm into a classification network once its weights are
    in (``models/textbook.py``). ``channels_last`` and ``compile`` are cnnlab's speed switches,
    applied to the built network (``models/speed.py``); ``crf`` is the task module's
    (``build_module``), no part of the network. With ``finetune``, ``finetune.head`` says which
    layers are the new head (``models/parts.py``) before the weights are loaded around it.
    """
    kwargs = OmegaConf.to_container(model_cfg, resolve=True)
    speed = {key: kwargs.pop(key, False) for key in ("channels_last", "compile")}
    kwargs.pop("crf", None)
    layers = kwargs.pop("layers", "torch")
    target = kwargs["_target_"]
    if layers != "torch" and model_task(target) != "classification":
        raise UserError(
            f"model.layers={layers}: the textbook layers replace those of classification "
            f"networks (lenet, alexnet, vgg*, resnet*, googlenet); "
            f"{target.rsplit('.', 1)[-1]} is a {model_task(target)} model. Keep model.layers="
            "torch here."
        )
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
        if kwargs["backbone"].get("layers", "torch") != "torch":
            raise UserError(
                "model.backbone.layers=textbook: a detector's or FCN's backbone keeps torch's "
                "layers (the textbook ones serve classification networks). Leave it at torch."
            )
        kwargs["backbone"] = build_network(
            OmegaConf.create(kwargs["backbone"]),
            1000,  # the backbone's own classifier is not used; 1,000 fits ImageNet weights
            in_channels,
            image_size,
            load_weights=load_weights,
        )
    net = instantiate(kwargs, num_classes=num_classes, in_channels=in_channels)
    if finetune:
        choose_head(net, finetune.get("head", "classifier"))  # checkpoints from before: whole
    if load_weights:
        load_configured_weights(net, target.rsplit(".", 1)[-1], weights, finetune)
    return apply_speed_switches(choose_layers(net, layers), **speed)


def build_module(
    cfg: DictConfig,
    task: str,
    datamodule: pl.LightningDataModule,
    load_weights: bool = True,
    training: bool = True,
) -> pl.LightningModule:
    """Network, optimizer and scheduler factories, wrapped in the task's LightningModule.

    Pretrained weights (``model.weights``, ``finetune.weights``) are loaded when
    ``load_weights``; a resumed run or an evaluation takes its weights from the checkpoint.
    A module that will train (``training``) gets the datamodule's class weights for its loss
    (``data.balance=loss``), counted from the training split; eval, predict and export, which
    only test or run the network, leave them out and need no training data for them.
    """
    check_task(cfg.model, task)
    # model.crf is absent from checkpoints written before the CRF existed: off
    crf = build_crf(cfg, task) if cfg.model.get("crf") else None
    finetune = active_finetune(cfg.get("finetune"))
    if finetune and not get_task(task).finetune:
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
    link_proposals(cfg.model, datamodule)
    module_cls = load(get_task(task).module)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    extra = {"backbone_lr_scale": finetune.backbone_lr_scale} if finetune else {}
    extra.update(recipe_kwargs(cfg.get("recipe"), task, "module"))
    if crf is not None:
        extra["crf"] = crf
    class_weights = getattr(datamodule, "loss_class_weights", lambda: None)() if training else None
    if class_weights is not None:  # data.balance=loss
        extra["class_weights"] = class_weights
    return module_cls(
        net=net,
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
        num_classes=datamodule.num_classes,
        **cfg.get("module", {}),
        **extra,
    )


def build_crf(cfg: DictConfig, task: str, switch: str = "model.crf") -> CRFSettings:
    """The fully connected CRF's settings (the ``crf`` node; keys it lacks, as in checkpoints
    written before the CRF existed, keep their defaults), for a segmentation run only: ``switch``
    (``model.crf`` or ``predict.crf``) is refused on other tasks."""
    if task != "segmentation":
        raise UserError(
            f"{switch}=true refines segmentation masks with DeepLab's fully connected CRF; this "
            f"run is {task}. Leave {switch} off, or use it with a segmentation checkpoint."
        )
    settings = CRFSettings.from_keys(OmegaConf.to_container(cfg.get("crf") or {}, resolve=True))
    densecrf_module()  # a missing extra is named now, not after the network has run
    return settings


def link_proposals(model_cfg: DictConfig, datamodule: pl.LightningDataModule) -> None:
    """A model that classifies given regions (``model.proposals``: R-CNN, Fast R-CNN) has its
    datamodule attach Selective Search's proposals to every picture, as those settings say."""
    if model_cfg.get("proposals") is None:
        return
    from cnnlab.data.proposals import ProposalSettings

    settings = OmegaConf.to_container(model_cfg.proposals, resolve=True)
    datamodule.use_proposals(ProposalSettings(**settings))


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
            Finetune(
                finetune_cfg.strategy,
                finetune_cfg.freeze_epochs,
                finetune_cfg.train_bn,
                finetune_cfg.get("trainable_layers"),  # absent from older run configs
            )
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


def build_loggers(
    logger_cfg: DictConfig | None, resume_step: int | None = None, config: DictConfig | None = None
) -> list:
    """The loggers of the ``logger`` group. ``resume_step`` (the restored global step of a
    resumed run) makes TensorBoard drop the points that an interrupted run wrote from that step
    on (``purge_step``), so the curves continue without doubled steps. A logger whose builder
    takes them (MLflow's) gets ``resume`` (continue the run folder's own run) and
    ``run_config``, the run's whole ``config`` resolved, to log as params."""
    loggers = []
    for c in (logger_cfg or {}).values():
        if c is None:
            continue
        extra = {}
        target = c.get("_target_", "")
        if resume_step is not None and target.endswith("TensorBoardLogger"):
            extra["purge_step"] = int(resume_step)
        takes = inspect.signature(get_method(target)).parameters if target else {}
        if "resume" in takes:
            extra["resume"] = resume_step is not None
        if "run_config" in takes and config is not None:
            extra["run_config"] = OmegaConf.to_container(config, resolve=True)
        # called on the partial: the config's own _target_ nodes are values here, not objects
        loggers.append(instantiate(c, _partial_=True)(**extra))
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
