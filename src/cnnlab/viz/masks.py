"""Segmentation masks as pictures: Pascal VOC colours, overlays on the image, palette PNGs.

A mask is an integer tensor (H, W) of class ids, 0 the background and 255 the pixels that no
metric counts. Class k is drawn in VOC's colour for k (the "bitget" palette of the VOC devkit:
1 dark red, 2 green, 3 olive, ...), and 255 in VOC's cream (224, 224, 192), as in the devkit's
SegmentationClass PNGs.
"""

from pathlib import Path

import torch

from cnnlab.data.palette import voc_palette


def palette_colors() -> torch.Tensor:
    """VOC's 256 colours as a uint8 table (256, 3): row k is the colour of class id k."""
    return torch.tensor(voc_palette(256), dtype=torch.uint8).reshape(256, 3)


def _checked_ids(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` as int64 (H, W) on the CPU, refusing ids no palette entry has."""
    if mask.dim() != 2:
        raise ValueError(f"A mask is (H, W) class ids; got shape {tuple(mask.shape)}.")
    mask = mask.detach().cpu().long()
    if mask.numel() and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(
            f"Mask ids must lie in 0..255 (255: ignored); found {int(mask.min())}.."
            f"{int(mask.max())}."
        )
    return mask


def colorize(mask: torch.Tensor) -> torch.Tensor:
    """Class ids (H, W) -> uint8 RGB (3, H, W) in VOC's colours."""
    return palette_colors()[_checked_ids(mask)].permute(2, 0, 1).contiguous()


def overlay(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """uint8 image (3 or 1, H, W) with each non-background pixel blended with its class colour:
    ``(1 - alpha) * image + alpha * colour``; background (0) pixels stay as they were."""
    ids = _checked_ids(mask)
    image = image.detach().cpu()
    if image.dtype != torch.uint8:
        raise ValueError(f"overlay takes a uint8 image; got {image.dtype}.")
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    if image.shape[1:] != ids.shape:
        raise ValueError(
            f"Image {tuple(image.shape[1:])} and mask {tuple(ids.shape)} differ in size."
        )
    blended = (1 - alpha) * image.float() + alpha * colorize(ids).float()
    drawn = blended.round().clamp(0, 255).to(torch.uint8)
    return torch.where(ids != 0, drawn, image)  # (H, W) broadcasts over the 3 channels


def palette_png(mask: torch.Tensor, path: str | Path) -> Path:
    """Write ``mask`` as a palette ('P') PNG with VOC's colours: viewers show the colours, and
    the stored pixel values are the class ids themselves (as in VOC's SegmentationClass)."""
    from PIL import Image

    path = Path(path)
    picture = Image.fromarray(_checked_ids(mask).to(torch.uint8).numpy())  # mode "L"
    picture.putpalette(voc_palette(256))  # turns the "L" image into a "P" image
    picture.save(path)
    return path


def mask_rows(images: torch.Tensor, masks: torch.Tensor, preds: torch.Tensor) -> list:
    """uint8 images (B, 3, H, W), true and predicted ids (B, H, W) -> for each image the tiles
    [image | true mask over it | predicted mask over it]."""
    tiles = []
    for image, mask, pred in zip(images, masks.cpu(), preds.cpu(), strict=True):
        tiles += [image, overlay(image, mask), overlay(image, pred)]
    return tiles
