"""Segmentation predictions: a class-id mask per input image, in the input's own pixels, as a
VOC palette PNG, an optional overlay, and per-class pixel counts as JSON."""

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from cnnlab.inference.files import name_of, unique_stems, write_json
from cnnlab.viz.images import save_png
from cnnlab.viz.masks import overlay, palette_png


def predict_mask(net, image: torch.Tensor, transform) -> torch.Tensor:
    """uint8 image (3, H, W) -> int64 class ids (H, W) at the image's own size.

    ``transform`` is the datamodule's eval transform (resize to ``data.image_size`` when set,
    normalise); the scores are resized back to (H, W) bilinearly before the argmax, as the
    FCN's own upsampling does, so every pixel gets a class id the network gave scores for.
    """
    device = next(net.parameters()).device
    height, width = image.shape[1:]
    x, _ = transform(image, torch.zeros(height, width, dtype=torch.uint8))  # mask: unused
    with torch.inference_mode():
        out = net(x.unsqueeze(0).to(device))
    scores = out[0] if isinstance(out, tuple | list) else out  # (1, C, h, w); aux heads dropped
    if scores.shape[-2:] != (height, width):
        scores = F.interpolate(scores, size=(height, width), mode="bilinear", align_corners=False)
    return scores.argmax(dim=1)[0].cpu()


def mask_row(path: Path, mask_path: Path, mask: torch.Tensor, num_classes: int, names) -> dict:
    """One JSON row: the input, its mask file, and pixels and their share per class name."""
    counts = torch.bincount(mask.flatten(), minlength=num_classes).tolist()
    total = mask.numel()
    return {
        "file": str(path),
        "mask": str(mask_path),
        "height": int(mask.shape[0]),
        "width": int(mask.shape[1]),
        "pixels": {name_of(k, names): n for k, n in enumerate(counts)},
        "fractions": {name_of(k, names): round(n / total, 6) for k, n in enumerate(counts)},
    }


def segment_images(net, images: list, out_dir: Path, datamodule, names, settings) -> list[dict]:
    """``images`` [(path, PIL RGB)] -> out_dir/<stem>.png (palette PNG, input-sized, pixel
    value = class id), out_dir/<stem>_overlay.png with ``settings.draw``, and out_dir/masks.json
    [{"file", "mask", "height", "width", "pixels": {class: count}, "fractions": {class: share}}]."""
    transform, num_classes = datamodule.transforms(train=False), datamodule.num_classes
    rows: list[dict] = []
    paths = [p for p, _ in images]
    # overlay names join the mask names, so that inputs a.png and a_overlay.png clash in none
    stems = unique_stems(paths + [p.with_name(f"{p.stem}_overlay") for p in paths])
    for (path, picture), stem, drawn_stem in zip(
        images, stems[: len(paths)], stems[len(paths) :], strict=True
    ):
        image = TF.pil_to_tensor(picture)  # uint8 (3, H, W)
        mask = predict_mask(net, image, transform)
        mask_path = palette_png(mask, out_dir / f"{stem}.png")
        if settings.draw:
            save_png(overlay(image, mask), out_dir / f"{drawn_stem}.png")
        rows.append(mask_row(path, mask_path, mask, num_classes, names))
    write_json(rows, out_dir / "masks.json")
    return rows
