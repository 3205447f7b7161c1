"""cnnlab-eval ckpt_path=PATH: test a checkpoint with the config stored in it."""

import logging

from omegaconf import DictConfig

from cnnlab.cli.app import entry_point

log = logging.getLogger("cnnlab")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild the checkpoint's model and data, test, write RUN_DIR/metrics.json."""
    import lightning.pytorch as pl

    from cnnlab.cli import build
    from cnnlab.cli.checkpoint_config import (
        config_from_checkpoint,
        epochs_trained,
        load_checkpoint,
        load_module_weights,
    )
    from cnnlab.cli.metrics_file import finish_run

    run_dir = cfg.paths.output_dir
    log.info("Run folder: %s", run_dir)
    checkpoint = load_checkpoint(cfg.ckpt_path)
    cfg = config_from_checkpoint(cfg, checkpoint)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    task, datamodule = build.build_datamodule(cfg.data)
    module = build.build_module(cfg, task, datamodule, load_weights=False)
    load_module_weights(module, checkpoint, cfg)
    epoch, step = epochs_trained(checkpoint), checkpoint["global_step"]
    log.info("Testing %s (after %d epochs, step %d)", cfg.ckpt_path, epoch, step)
    callbacks = [
        c
        for c in build.build_callbacks(cfg.get("callbacks"))
        if isinstance(c, pl.callbacks.ProgressBar)
    ]
    trainer = build.build_trainer(cfg.trainer, callbacks, build.build_loggers(cfg.get("logger")))

    metrics: dict[str, float] = {"epoch": epoch, "global_step": step}
    for results in trainer.test(module, datamodule=datamodule):
        metrics.update(results)
    finish_run(run_dir, metrics, trainer.is_global_zero)
    return metrics


@entry_point("eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
