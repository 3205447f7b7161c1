"""Predictions of a restored run for a list of image files, written by its task's predictor."""

import logging
from pathlib import Path

import torch

from cnnlab.factory.restore import Restored
from cnnlab.inference.files import class_names_of, read_image
from cnnlab.models.crf import CRFSettings
from cnnlab.tasks.table import get_task, load

log = logging.getLogger("cnnlab")


def predict_files(
    run: Restored, paths: list[Path], out_dir: Path, settings, crf: CRFSettings | None = None
) -> list[dict]:
    """Run ``run``'s network over the images at ``paths`` (every one read before anything is
    written) and write its task's files into ``out_dir``; return the JSON rows.

    ``settings``: the ``predict`` config (device, draw, top_k, score_threshold). ``crf``: the
    fully connected CRF's settings for a segmentation run's masks (``predict.crf=true``).
    """
    task = get_task(run.task)
    grey = task.image_mode == "channels" and run.datamodule.in_channels == 1
    images = [(p, read_image(p, "L" if grey else "RGB")) for p in paths]
    device = settings.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    net = run.module.net.to(device).eval()
    names = class_names_of(run.datamodule)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = {} if crf is None else {"crf": crf}  # only the segmentation predictor takes it
    return load(task.predictor)(net, images, out_dir, run.datamodule, names, settings, **extra)
