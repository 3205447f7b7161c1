"""``tune.lr_find`` and ``tune.batch_size_find``: Lightning's finders, run before training.

The learning-rate finder trains for ``num_training`` steps with the rate growing from
``min_lr`` to ``max_lr``, records the loss, and suggests the rate where the loss falls fastest;
cnnlab saves the curve as RUN_DIR/lr_find.png (the suggestion marked), logs the suggestion and
trains with it. The batch-size finder doubles the batch size until a step no longer fits in
memory (or ``max_trials`` doublings) and trains with the largest that fitted: worth it on a
GPU. Both put the model, the data and the random state back as they were before training.
"""

import logging
from pathlib import Path

log = logging.getLogger("cnnlab")


def run_finders(tune_cfg, trainer, module, datamodule, run_dir: str) -> dict[str, float]:
    """Run the finders switched on in ``tune_cfg``; return what they chose (``tune/...``)."""
    if tune_cfg is None or not (tune_cfg.get("lr_find") or tune_cfg.get("batch_size_find")):
        return {}
    from lightning.pytorch.tuner import Tuner

    tuner, chosen = Tuner(trainer), {}
    if tune_cfg.get("batch_size_find"):
        size = tuner.scale_batch_size(
            module,
            datamodule=datamodule,
            mode="power",
            init_val=datamodule.batch_size,
            max_trials=tune_cfg.get("max_trials", 6),
        )
        log.info("Batch-size finder: training with data.batch_size=%d", size)
        chosen["tune/batch_size"] = float(size)
    if tune_cfg.get("lr_find"):
        module.lr = module.optimizer_factory.keywords["lr"]  # the finder needs a starting value
        finder = tuner.lr_find(
            module,
            datamodule=datamodule,
            min_lr=tune_cfg.get("min_lr", 1e-6),
            max_lr=tune_cfg.get("max_lr", 1.0),
            num_training=tune_cfg.get("num_training", 100),
            attr_name="lr",
        )
        suggestion = finder.suggestion() if finder is not None else None
        if suggestion is None:  # too few points for a slope: keep the configured rate
            log.warning("Learning-rate finder: no suggestion; training with %s", module.lr)
        else:
            module.lr = suggestion
            log.info("Learning-rate finder: training with lr=%.3g (optimizer.lr)", suggestion)
            chosen["tune/lr"] = float(suggestion)
        if finder is not None and trainer.is_global_zero:
            figure = finder.plot(suggest=suggestion is not None)
            figure.savefig(Path(run_dir) / "lr_find.png", dpi=100)
            log.info("Learning-rate finder curve: %s", Path(run_dir) / "lr_find.png")
    return chosen
