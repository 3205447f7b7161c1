"""Segmentation predictions: a class-id mask per input image, in the input's own pixels, as a
VOC palette PNG, an optional overlay, and per-class pixel counts as JSON; with ``predict.crf``
the masks are refined by DeepLab's fully connected CRF and the pixels it changed are drawn."""

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from cnnlab.inference.files import device_of, name_of, unique_stems, write_json
from cnnlab.models.crf import CRFSettings, dense_crf
from cnnlab.viz.images import save_png
from cnnlab.viz.masks import colorize, overlay, palette_png

# The change picture fades the input to 0.35 * pixel + 96, a low-contrast grey, rather than
# darkening it: VOC's colour of the background (class 0) is black, and must show as well.
FADED = (0.35, 96)


def predict_scores(net, image: torch.Tensor, transform) -> torch.Tensor:
    """uint8 image (3, H, W) -> float class scores (C, H, W) at the image's own size.

    ``transform`` is the datamodule's eval transform (resize to ``data.image_size`` when set,
    normalise); the scores are resized back to (H, W) bilinearly, as the FCN's own upsampling
    does, so every pixel gets scores from the network.
    """
    device = device_of(net)
    height, width = image.shape[1:]
    x, _ = transform(image, torch.zeros(height, width, dtype=torch.uint8))  # mask: unused
    with torch.inference_mode():
        out = net(x.unsqueeze(0).to(device))
    scores = out[0] if isinstance(out, tuple | list) else out  # (1, C, h, w); aux heads dropped
    if scores.shape[-2:] != (height, width):
        scores = F.interpolate(scores, size=(height, width), mode="bilinear", align_corners=False)
    return scores[0]


def predict_mask(net, image: torch.Tensor, transform) -> torch.Tensor:
    """uint8 image (3, H, W) -> int64 class ids (H, W) at the image's own size: the argmax of
    ``predict_scores``."""
    return predict_scores(net, image, transform).argmax(dim=0).cpu()


def crf_change(image: torch.Tensor, mask: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
    """uint8 (3, H, W): ``image`` faded to grey, the ``changed`` pixels (bool (H, W)) drawn in
    the VOC colour of their new class in ``mask``."""
    scale, offset = FADED
    faded = (image.float() * scale + offset).round().to(torch.uint8)
    return torch.where(changed.cpu(), colorize(mask), faded)


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


def segment_images(
    net, images: list, out_dir: Path, datamodule, names, settings, crf: CRFSettings | None = None
) -> list[dict]:
    """``images`` [(path, PIL RGB)] -> out_dir/<stem>.png (palette PNG, input-sized, pixel
    value = class id), out_dir/<stem>_overlay.png with ``settings.draw``, and out_dir/masks.json
    [{"file", "mask", "height", "width", "pixels": {class: count}, "fractions": {class: share}}].

    With ``crf`` (``predict.crf=true``) the mask is the argmax of the softmax refined by the
    fully connected CRF on the input picture; out_dir/<stem>_crf_change.png shows the pixels
    it changed (``crf_change``) and each row gains "crf_changed_pixels".
    """
    transform, num_classes = datamodule.transforms(train=False), datamodule.num_classes
    rows: list[dict] = []
    paths = [p for p, _ in images]
    # the drawn files' names join the mask names, so that inputs a.png and a_overlay.png (or
    # a_crf_change.png) clash in none; names added at the end leave the earlier ones as they are
    stems = unique_stems(
        paths
        + [p.with_name(f"{p.stem}_overlay") for p in paths]
        + [p.with_name(f"{p.stem}_crf_change") for p in paths]
    )
    count = len(paths)
    for (path, picture), stem, drawn_stem, change_stem in zip(
        images, stems[:count], stems[count : 2 * count], stems[2 * count :], strict=True
    ):
        image = TF.pil_to_tensor(picture)  # uint8 (3, H, W)
        scores = predict_scores(net, image, transform)
        mask, extra = scores.argmax(dim=0).cpu(), {}
        if crf is not None:
            refined = dense_crf(image, scores.float().softmax(dim=0), crf).argmax(dim=0).cpu()
            changed = refined != mask
            save_png(crf_change(image, refined, changed), out_dir / f"{change_stem}.png")
            mask, extra = refined, {"crf_changed_pixels": int(changed.sum())}
        mask_path = palette_png(mask, out_dir / f"{stem}.png")
        if settings.draw:
            save_png(overlay(image, mask), out_dir / f"{drawn_stem}.png")
        rows.append(mask_row(path, mask_path, mask, num_classes, names) | extra)
    write_json(rows, out_dir / "masks.json")
    return rows
