"""cnnlab-train: train, validate each epoch, test the best checkpoint, write metrics.json."""

import logging

from omegaconf import DictConfig, OmegaConf

from cnnlab.cli.app import entry_point, quiet_library_noise, typed_overrides

log = logging.getLogger("cnnlab")


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job described by a composed config; return the final metrics."""
    # Imported here, after Hydra has set up logging, so Lightning's messages reach train.log.
    import lightning.pytorch as pl

    from cnnlab.callbacks.early_stopping import stopped_early
    from cnnlab.callbacks.trial_pruning import pruned_at_epoch
    from cnnlab.cli.heap import frozen_heap
    from cnnlab.cli.metrics_file import finish_run
    from cnnlab.factory import build
    from cnnlab.factory.restore import restore
    from cnnlab.factory.resume import interrupt_callback, resolve_ckpt_path
    from cnnlab.factory.search_trial import trial_callbacks
    from cnnlab.factory.sweep_jobs import plan_job
    from cnnlab.factory.tune import run_finders
    from cnnlab.loggers.mlflow import upload_run_files
    from cnnlab.tasks.table import get_task

    quiet_library_noise()
    run_dir = cfg.paths.output_dir
    log.info("Run folder: %s", run_dir)  # first and last line: where to look
    if OmegaConf.select(cfg, "extras.print_config", default=False):
        from cnnlab.callbacks.progress import print_config_tree

        print_config_tree(OmegaConf.to_container(cfg, resolve=True))
    state, stored = plan_job(cfg)  # a -m sweep run again: skip, resume or start this job
    if state == "skipped":
        return stored
    resume_step = None
    if cfg.get("ckpt_path"):  # the run comes back from its checkpoint, with its stored config
        cfg.ckpt_path = resolve_ckpt_path(cfg.ckpt_path, run_dir)
        run = restore(cfg.ckpt_path, cfg, typed_overrides(cfg), training=True)
        cfg, task, datamodule, module = run.cfg, run.task, run.datamodule, run.module
        resume_step = run.global_step
        log.info("Resuming from %s (after %d epochs, step %d) with the config stored in it.",
                 cfg.ckpt_path, run.epochs, resume_step)  # fmt: skip
    else:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        task, datamodule = build.build_datamodule(cfg.data, cfg.get("recipe"))
        module = build.build_module(cfg, task, datamodule)
    callbacks = build.build_callbacks(
        cfg.get("callbacks"),
        config=OmegaConf.to_container(cfg, resolve=False),
        finetune_cfg=cfg.get("finetune"),
        nan_guard_cfg=cfg.get("nan_guard"),
    )
    callbacks += build.build_recipe_callbacks(cfg.get("recipe"))
    callbacks.append(interrupt_callback(run_dir))
    callbacks += trial_callbacks(get_task(cfg.data.task).monitor)  # hparams_search=optuna
    loggers = build.build_loggers(cfg.get("logger"), resume_step=resume_step, config=cfg)
    trainer = build.build_trainer(cfg.trainer, callbacks, loggers)

    tuned = {} if cfg.get("ckpt_path") else run_finders(cfg.get("tune"), trainer, module,
                                                         datamodule, run_dir)  # fmt: skip
    with frozen_heap():  # no full garbage collection over the imports in the middle of an epoch
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"),
                    weights_only=True)  # fmt: skip
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics.update(tuned)
    metrics.update(epoch=trainer.current_epoch, global_step=trainer.global_step)
    stopped = stopped_early(trainer)
    if stopped is not None:  # early stopping was on
        metrics["stopped_early"] = stopped
    metrics["params"] = sum(p.numel() for p in module.net.parameters())

    best = build.best_checkpoint(trainer)
    pruned = pruned_at_epoch(trainer)
    if pruned is not None:  # an Optuna trial stopped by its pruner: not worth testing
        metrics["pruned_at_epoch"] = pruned
        log.info("Pruned at epoch %d: not tested.", pruned)
    elif best:
        log.info("Testing the best checkpoint: %s", best)
    else:
        log.info("No best checkpoint was saved: testing the weights as they are.")
    if pruned is None:
        with frozen_heap():
            tested = trainer.test(module, datamodule=datamodule, ckpt_path=best or None,
                                  weights_only=True)  # fmt: skip
        for results in tested:
            metrics.update(results)

    finish_run(run_dir, metrics, trainer.is_global_zero)
    upload_run_files(loggers, best)  # MLflow: metrics.json, the config, the best checkpoint
    return metrics


@entry_point("train")
def main(cfg: DictConfig) -> float | None:
    """Train; return the monitored metric (val/acc, val/map, ...), the objective of a sweeper
    such as ``hparams_search=optuna``."""
    from cnnlab.tasks.table import get_task

    return train(cfg).get(get_task(cfg.data.task).monitor)


if __name__ == "__main__":
    main()
