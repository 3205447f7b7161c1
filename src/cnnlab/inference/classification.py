"""Classification predictions: the top classes of each input image, and the answer drawn."""

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.errors import UserError
from cnnlab.inference.cam import cam_layer, grad_cam
from cnnlab.inference.files import device_of, name_of, unique_stems, write_json
from cnnlab.viz.images import caption, heatmap_overlay, save_png


@dataclass(frozen=True)
class CamSettings:
    """``predict.cam``: the layer Grad-CAM weighs and the class it explains (None: each
    picture's predicted class)."""

    layer: torch.nn.Module
    target: int | None

    @classmethod
    def from_predict(cls, net, settings, names) -> "CamSettings | None":
        if not settings.get("cam"):
            return None
        _, layer = cam_layer(net, settings.get("cam_layer"))
        wanted = settings.get("cam_class")
        if wanted is None:
            return cls(layer, None)
        wanted = str(wanted)
        if names and wanted in names:
            return cls(layer, names.index(wanted))
        raise UserError(
            f"predict.cam_class={wanted}: not a class of this run; the classes are "
            f"{', '.join(names or [])}."
        )


def class_probs(net, image, transform, image_size: int | None, device) -> torch.Tensor:
    """The class probabilities (K,) of one PIL image, resized to ``image_size`` x ``image_size``
    and passed through the evaluation ``transform`` as in training."""
    if image_size and image.size != (image_size, image_size):
        image = image.resize((image_size, image_size))
    with torch.inference_mode():
        out = net(transform(image).unsqueeze(0).to(device))
    logits = out[0] if isinstance(out, tuple | list) else out
    return logits.softmax(dim=1)[0].cpu()


def classify_images(net, images: list, out_dir: Path, datamodule, names, settings) -> list[dict]:
    """``images`` [(path, PIL)] -> out_dir/predictions.json [{"file", "label", "class_name",
    "score", "top5"}] (``settings.top_k`` classes) and, with ``settings.draw``,
    out_dir/<stem>.png captioned with the answer. Images are resized to the datamodule's size
    and go through its evaluation transform."""
    transform, image_size = datamodule.transforms(train=False), datamodule.image_size
    top_k, draw = settings.top_k, settings.draw
    explain = CamSettings.from_predict(net, settings, names)
    device = device_of(net)
    rows: list[dict] = []
    stems = unique_stems([p for p, _ in images])
    for (path, image), stem in zip(images, stems, strict=True):
        probs = class_probs(net, image, transform, image_size, device)
        scores, labels = probs.topk(min(top_k, len(probs)))
        top = [
            {"label": int(lab), "class_name": name_of(int(lab), names), "score": round(float(s), 4)}
            for s, lab in zip(scores, labels, strict=True)
        ]
        rows.append({"file": str(path), **top[0], "top5": top})
        if draw:
            text = f"{top[0]['class_name']} {top[0]['score']:.2f}"
            save_png(caption(image, text), out_dir / f"{stem}.png")
        if explain is not None:
            target = top[0]["label"] if explain.target is None else explain.target
            resized = image.resize((image_size, image_size)) if image_size else image
            x = transform(resized).unsqueeze(0).to(device_of(net))
            heat = grad_cam(net, x, target, explain.layer)[None, None]
            heat = F.interpolate(heat, size=image.size[::-1], mode="bilinear")[0, 0]
            drawn = caption(heatmap_overlay(image, heat), f"Grad-CAM: {name_of(target, names)}")
            save_png(drawn, out_dir / f"{stem}_cam.png")
    write_json(rows, out_dir / "predictions.json")
    return rows
