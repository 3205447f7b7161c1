"""cnnlab-predict ckpt_path=PATH input=PATH: a checkpoint's predictions for a file, a folder or a
list of images, as JSON and drawn images in RUN_DIR/predictions/."""

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from cnnlab.cli.app import entry_point
from cnnlab.errors import UserError

log = logging.getLogger("cnnlab")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


def image_paths(spec) -> list[Path]:
    """The images named by ``input``: a file, every image file in a folder (sorted), or a list."""
    items = list(spec) if isinstance(spec, list | tuple | ListConfig) else [spec]
    paths: list[Path] = []
    for item in items:
        path = Path(str(item)).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(
                    f"The folder {path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})."
                    " Give input= a folder of images, an image file or a list [a.png,b.png]."
                )
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(
                f"No image or folder at {path}. Give input= an existing image file, a folder of "
                "images or a list [a.png,b.png] (relative paths start where the command runs)."
            )
    return paths


def read_image(path: Path, mode: str = "RGB"):
    """The image at ``path`` as a PIL image in ``mode`` ("RGB" or "L")."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise UserError(
            f"Could not read the image {path}: {e}. Give input= only image files PIL can open, "
            "or move the file out of the folder."
        ) from e


def class_names_of(datamodule) -> list[str] | None:
    """The datamodule's class names, or None where they need data that is not at hand."""
    try:
        return list(datamodule.class_names)
    except (OSError, UserError, RuntimeError) as e:
        log.warning("Class names unavailable (%s): labels are written as numbers.", e)
        return None


def unique_stems(paths: list[Path]) -> list[str]:
    """File stems, with _2, _3, ... added where two inputs share one."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        stems.append(path.stem if seen[path.stem] == 1 else f"{path.stem}_{seen[path.stem]}")
    return stems


def save_png(image, path: Path) -> None:
    """A uint8 tensor (3, H, W) or a PIL image, as PNG."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    image.save(path)


def write_json(rows: list[dict], path: Path) -> None:
    path.write_text(json.dumps(rows, indent=1) + "\n")


def detection_rows(index: int, path: Path, pred: dict, names, score_threshold: float) -> list:
    """COCO results rows for one image: xywh boxes in its own pixels, scores >= the threshold."""
    from cnnlab.tasks.detection import label_text

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


def detect_images(net, images: list, out_dir: Path, names, score_threshold: float, draw: bool):
    """``images`` [(path, PIL RGB)] -> out_dir/detections.json (COCO results format; image_id is
    the image's 0-based position in the input) and out_dir/<stem>.png with the kept boxes."""
    import torch
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.tasks.detection import draw_detections

    device = next(net.parameters()).device
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


def caption(image, text: str):
    """A copy of a PIL image, at least 128 pixels high, with ``text`` written at the top."""
    from PIL import ImageDraw

    image = image.convert("RGB")
    if image.height < 128:
        scale = 128 / image.height
        image = image.resize((round(image.width * scale), 128))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((2, 2), text)
    draw.rectangle((0, 0, right + 2, bottom + 2), fill="black")
    draw.text((2, 2), text, fill="yellow")
    return image


def classify_images(net, images: list, out_dir: Path, names, transform, image_size, top_k, draw):
    """``images`` [(path, PIL)] -> out_dir/predictions.json [{"file", "label", "class_name",
    "score", "top5"}] and, when ``draw``, out_dir/<stem>.png captioned with the answer."""
    import torch

    device = next(net.parameters()).device
    rows: list[dict] = []
    stems = unique_stems([p for p, _ in images])
    for (path, image), stem in zip(images, stems, strict=True):
        resized = image
        if image_size and image.size != (image_size, image_size):
            resized = image.resize((image_size, image_size))
        with torch.inference_mode():
            out = net(transform(resized).unsqueeze(0).to(device))
        logits = out[0] if isinstance(out, tuple | list) else out
        probs = logits.softmax(dim=1)[0].cpu()
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


def name_of(label: int, names) -> str:
    return names[label] if names and 0 <= label < len(names) else str(label)


def predict(cfg: DictConfig) -> Path:
    """Rebuild the checkpoint's model, predict for every input image, return the output folder."""
    import torch

    from cnnlab.cli import build
    from cnnlab.cli.checkpoint_config import (
        config_from_checkpoint,
        load_checkpoint,
        load_module_weights,
    )

    settings, inputs = cfg.predict, cfg.input  # this run's, absent from the stored config
    paths = image_paths(inputs)
    checkpoint = load_checkpoint(cfg.ckpt_path)
    cfg = config_from_checkpoint(cfg, checkpoint)
    task, datamodule = build.build_datamodule(cfg.data)
    module = build.build_module(cfg, task, datamodule, load_weights=False)
    load_module_weights(module, checkpoint, cfg)
    mode = "L" if task == "classification" and datamodule.in_channels == 1 else "RGB"
    images = [(p, read_image(p, mode)) for p in paths]  # every image read before any is written
    device = settings.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    net = module.net.to(device).eval()
    names = class_names_of(datamodule)

    out_dir = Path(cfg.paths.output_dir) / "predictions"
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info(
        "Predicting %d image(s) with %s (%s) into %s", len(paths), cfg.ckpt_path, task, out_dir
    )
    if task == "detection":
        detect_images(net, images, out_dir, names, settings.score_threshold, settings.draw)
    elif task == "segmentation":
        from cnnlab.cli.predict_segmentation import segment_images

        transform, classes = datamodule.transforms(train=False), datamodule.num_classes
        segment_images(net, images, out_dir, names, classes, transform, settings.draw)
    else:
        transform = datamodule.transforms(train=False)
        size, top_k = datamodule.image_size, settings.top_k
        classify_images(net, images, out_dir, names, transform, size, top_k, settings.draw)
    return out_dir


@entry_point("predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
