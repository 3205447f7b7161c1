"""Classification predictions: the top classes of each input image, and the answer drawn."""

from pathlib import Path

import torch

from cnnlab.inference.files import device_of, name_of, unique_stems, write_json
from cnnlab.viz.images import caption, save_png


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
    write_json(rows, out_dir / "predictions.json")
    return rows
