"""Detection predictions: COCO results rows for each input image and the kept boxes drawn."""

from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as TF

from cnnlab.inference.files import device_of, unique_stems, write_json
from cnnlab.viz.boxes import draw_detections, label_text
from cnnlab.viz.images import save_png


def detection_rows(index: int, path: Path, pred: dict, names, score_threshold: float) -> list:
    """COCO results rows for one image: xywh boxes in its own pixels, scores >= the threshold."""
    rows = []
    for box, label, score in zip(pred["boxes"], pred["labels"], pred["scores"], strict=True):
        if float(score) < score_threshold:
            continue
        x0, y0, x1, y1 = (float(v) for v in box)
        rows.append(
            {
                "image_id": index,
                "file_name": str(path),
                "category_id": int(label),
                "category_name": label_text(int(label), names),
                "bbox": [round(v, 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                "score": round(float(score), 4),
            }
        )
    return rows


def detect_images(net, images: list, out_dir: Path, datamodule, names, settings) -> list[dict]:
    """``images`` [(path, PIL RGB)] -> out_dir/detections.json (COCO results format; image_id is
    the image's 0-based position in the input) and, with ``settings.draw``, out_dir/<stem>.png
    with the boxes that score at least ``settings.score_threshold``."""
    score_threshold, draw = settings.score_threshold, settings.draw
    device = device_of(net)
    rows: list[dict] = []
    stems = unique_stems([p for p, _ in images])
    for index, ((path, image), stem) in enumerate(zip(images, stems, strict=True)):
        x = TF.to_dtype(TF.to_image(image), torch.float32, scale=True)
        with torch.inference_mode():
            pred = {k: v.cpu() for k, v in net([x.to(device)])[0].items()}
        found = detection_rows(index, path, pred, names, score_threshold)
        rows.extend(found)
        if draw:
            keep = pred["scores"] >= score_threshold
            drawn = draw_detections(
                x, pred["boxes"][keep], pred["labels"][keep], pred["scores"][keep], names
            )
            save_png(drawn, out_dir / f"{stem}.png")
    write_json(rows, out_dir / "detections.json")
    return rows
