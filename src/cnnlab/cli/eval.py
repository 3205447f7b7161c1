"""cnnlab-eval ckpt_path=PATH: test a checkpoint with the config stored in it."""

import logging

from omegaconf import DictConfig

from cnnlab.cli.app import entry_point, quiet_library_noise, typed_overrides

log = logging.getLogger("cnnlab")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Restore the checkpoint's run, test it, write RUN_DIR/metrics.json."""
    import lightning.pytorch as pl

    from cnnlab.cli.metrics_file import finish_run
    from cnnlab.factory import build
    from cnnlab.factory.restore import restore

    quiet_library_noise()
    run_dir = cfg.paths.output_dir
    log.info("Run folder: %s", run_dir)
    run = restore(cfg.ckpt_path, cfg, typed_overrides(cfg))
    log.info("Testing %s (after %d epochs, step %d)", cfg.ckpt_path, run.epochs, run.global_step)
    bars = [c for c in build.build_callbacks(run.cfg.get("callbacks"))
            if isinstance(c, pl.callbacks.ProgressBar)]  # fmt: skip
    loggers = build.build_loggers(run.cfg.get("logger"))
    trainer = build.build_trainer(run.cfg.trainer, bars, loggers)

    metrics: dict[str, float] = {"epoch": run.epochs, "global_step": run.global_step}
    for results in trainer.test(run.module, datamodule=run.datamodule):
        metrics.update(results)
    finish_run(run_dir, metrics, trainer.is_global_zero)
    return metrics


@entry_point("eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
