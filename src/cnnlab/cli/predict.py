"""cnnlab-predict ckpt_path=PATH input=PATH: a checkpoint's predictions for a file, a folder or a
list of images, as JSON and drawn images in RUN_DIR/predictions/."""

import logging
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.cli.app import entry_point, quiet_library_noise, typed_overrides

log = logging.getLogger("cnnlab")


def predict(cfg: DictConfig) -> Path:
    """Restore the checkpoint's run, predict for every input image, return the output folder."""
    from cnnlab.factory.build import build_crf
    from cnnlab.factory.restore import restore
    from cnnlab.inference.files import image_paths
    from cnnlab.inference.predict import predict_files

    quiet_library_noise()
    settings, paths = cfg.predict, image_paths(cfg.input)  # this run's, not the stored config's
    run = restore(cfg.ckpt_path, cfg, typed_overrides(cfg))
    # the CRF's settings: the run's crf node (stored, with what was typed now on top)
    crf = build_crf(run.cfg, run.task, "predict.crf") if settings.get("crf") else None
    out_dir = Path(cfg.paths.output_dir) / "predictions"
    log.info("Predicting %d image(s) with %s (%s) into %s", len(paths), cfg.ckpt_path, run.task,
             out_dir)  # fmt: skip
    predict_files(run, paths, out_dir, settings, crf)
    return out_dir


@entry_point("predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
