"""Config -> objects. The only place where ``hydra.utils.instantiate`` is called."""

import logging
import warnings

import lightning.pytorch as pl
from hydra.errors import InstantiationException
from hydra.utils import get_class
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from cnnlab.callbacks.run_config import StoreConfig
from cnnlab.errors import UserError
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


def build_datamodule(data_cfg: DictConfig) -> tuple[str, pl.LightningDataModule]:
    """The datamodule and the task its config names (``task`` is not a constructor argument)."""
    kwargs = OmegaConf.to_container(data_cfg, resolve=True)
    task = kwargs.pop("task", "classification")
    if task not in TASK_MODULES:
        raise UserError(
            f"data.task={task!r} is not a task cnnlab knows; "
            f"choose one of {', '.join(TASK_MODULES)}."
        )
    return task, instantiate(kwargs)


def build_module(
    cfg: DictConfig, task: str, datamodule: pl.LightningDataModule
) -> pl.LightningModule:
    """Network, optimizer and scheduler factories, wrapped in the task's LightningModule."""
    sizes = {"num_classes": datamodule.num_classes, "in_channels": datamodule.in_channels}
    net = instantiate(cfg.model, **sizes)
    module_cls = get_class(TASK_MODULES[task])
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    return module_cls(
        net=net,
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
        num_classes=datamodule.num_classes,
        **cfg.get("module", {}),
    )


def build_callbacks(
    callbacks_cfg: DictConfig | None, config: dict | None = None
) -> list[pl.Callback]:
    """Every callback of the ``callbacks`` group, plus one that stores ``config`` in checkpoints."""
    callbacks = [instantiate(c) for c in (callbacks_cfg or {}).values() if c is not None]
    if config is not None:
        callbacks.append(StoreConfig(config))
    return callbacks


def build_loggers(logger_cfg: DictConfig | None) -> list:
    return [instantiate(c) for c in (logger_cfg or {}).values() if c is not None]


def build_trainer(trainer_cfg: DictConfig, callbacks: list, loggers: list) -> pl.Trainer:
    return instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)


def best_checkpoint(trainer: pl.Trainer) -> str:
    """The path of the best checkpoint by a monitored metric, or "" when none was saved."""
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "monitor", None) and cb.best_model_path:
            return cb.best_model_path
    return ""
