"""Predictions of a restored run for a list of image files, written by its task's predictor."""

import logging
from pathlib import Path

import torch

from cnnlab.errors import UserError
from cnnlab.factory.restore import Restored
from cnnlab.inference.faces import classify_faces
from cnnlab.inference.files import class_names_of, read_image
from cnnlab.models.crf import CRFSettings
from cnnlab.tasks.table import get_task, load

log = logging.getLogger("cnnlab")


def predict_files(
    run: Restored, paths: list[Path], out_dir: Path, settings, crf: CRFSettings | None = None
) -> list[dict]:
    """Run ``run``'s network over the images at ``paths`` (every one read before anything is
    written) and write its task's files into ``out_dir``; return the JSON rows.

    ``settings``: the ``predict`` config (device, draw, top_k, score_threshold; ``faces`` and the
    ``face_*`` keys: classify each face of the photos instead, ``inference/faces.py``). ``crf``: the
    fully connected CRF's settings for a segmentation run's masks (``predict.crf=true``).
    """
    task = get_task(run.task)
    faces = bool(settings.get("faces"))
    if faces and run.task != "classification":
        raise UserError(
            f"predict.faces=true finds faces and classifies each (an expression classifier, "
            f"such as one trained with data=fer2013); this checkpoint is a {run.task} run. "
            "Leave predict.faces off for it."
        )
    grey = task.image_mode == "channels" and run.datamodule.in_channels == 1 and not faces
    images = [(p, read_image(p, "L" if grey else "RGB")) for p in paths]
    device = settings.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    net = run.module.net.to(device).eval()
    names = class_names_of(run.datamodule)
    out_dir.mkdir(parents=True, exist_ok=True)
    if faces:  # photos in, a row per face out (inference/faces.py)
        return classify_faces(net, images, out_dir, run.datamodule, names, settings)
    extra = {} if crf is None else {"crf": crf}  # only the segmentation predictor takes it
    return load(task.predictor)(net, images, out_dir, run.datamodule, names, settings, **extra)
