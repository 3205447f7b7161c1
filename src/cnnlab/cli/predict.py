"""cnnlab-predict ckpt_path=PATH input=PATH: a checkpoint's predictions for a file, a folder or a
list of images, as JSON and drawn images in RUN_DIR/predictions/."""

import logging
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.cli.app import entry_point, quiet_library_noise, typed_overrides

log = logging.getLogger("cnnlab")


def predict(cfg: DictConfig) -> Path:
    """Restore the checkpoint's run, predict for every input image, return the output folder.
    A ``ckpt_path`` that is an exported model (model.onnx, model.pt) is run without the
    checkpoint, the datamodule or Lightning (``predict_exported``)."""
    from cnnlab.inference.exported import is_exported

    if is_exported(cfg.ckpt_path):
        return predict_exported(cfg)
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


def predict_exported(cfg: DictConfig) -> Path:
    """Predict with an exported model and its model.json: the same files as from a checkpoint."""
    from cnnlab.errors import UserError
    from cnnlab.inference.exported import PREDICTORS, load_exported
    from cnnlab.inference.files import image_paths, read_image
    from cnnlab.tasks.table import load

    settings, paths = cfg.predict, image_paths(cfg.input)
    if settings.get("crf") or settings.get("faces"):
        raise UserError(
            "predict.crf and predict.faces need the checkpoint; an exported model predicts "
            "plain classes and masks. Give ckpt_path= the checkpoint for them."
        )
    net, data = load_exported(cfg.ckpt_path)
    mode = "L" if data.task == "classification" and data.in_channels == 1 else "RGB"
    images = [(p, read_image(p, mode)) for p in paths]
    out_dir = Path(cfg.paths.output_dir) / "predictions"
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("Predicting %d image(s) with %s (%s, exported) into %s", len(paths),
             cfg.ckpt_path, data.task, out_dir)  # fmt: skip
    load(PREDICTORS[data.task])(net, images, out_dir, data, data.class_names, settings)
    return out_dir


@entry_point("predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
