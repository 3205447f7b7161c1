"""Images as tensors and files: un-normalising batches, grids, captions, PNG bytes.

An image here is a uint8 tensor (3, H, W) (what ``SummaryWriter.add_image`` and PNG writers
take) unless a function says otherwise. Every picture cnnlab draws (TensorBoard, predict, the
report) goes through ``cnnlab.viz``, so a box, a mask or a caption looks the same everywhere.
"""

import io
import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def to_uint8(images: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None):
    """Normalised batch images (B, C, H, W) -> uint8 RGB (B, 3, H, W) on the CPU.

    With ``mean``/``std`` (the datamodule's) the normalisation is undone; without them each
    image is stretched to its own min..max.
    """
    x = images.detach().float().cpu()
    if mean is not None and std is not None:
        x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    else:
        low = x.amin(dim=(1, 2, 3), keepdim=True)
        x = (x - low) / (x.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def unnormalize(images: torch.Tensor) -> torch.Tensor:
    """Batch images (B, 3, H, W) normalised with ImageNet's mean and std -> uint8 on the CPU."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pixels = (images.detach().float() * std + mean).clamp(0, 1) * 255
    return pixels.round().to(torch.uint8).cpu()


def image_grid(images: list[torch.Tensor], columns: int = 4) -> torch.Tensor:
    """uint8 images of any sizes, zero-padded to the largest, as one (3, H, W) grid."""
    height = max(im.shape[1] for im in images)
    width = max(im.shape[2] for im in images)
    padded = [F.pad(im, (0, width - im.shape[2], 0, height - im.shape[1])) for im in images]
    return make_grid(torch.stack(padded), nrow=min(columns, len(padded)), padding=2)


def enlarged(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Images (..., H, W) with each pixel repeated ``scale`` x ``scale`` (nearest neighbour)."""
    if scale <= 1:
        return images
    return images.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def scaled_grid(images: torch.Tensor, min_side: int = 64) -> torch.Tensor:
    """uint8 images (B, 3, H, W) enlarged by a whole factor to at least ``min_side`` pixels (so
    32x32 digits are drawn 64x64), as one grid with white gaps."""
    scale = max(1, math.ceil(min_side / max(images.shape[-2:])))
    return make_grid(
        enlarged(images, scale),
        nrow=math.ceil(math.sqrt(len(images))),
        padding=2,
        pad_value=255,
    )


def tensor_png(image: torch.Tensor, scale: int = 1) -> bytes:
    """uint8 (C, H, W) with 1 or 3 channels -> PNG bytes, each pixel ``scale`` x ``scale``."""
    from PIL import Image

    array = enlarged(image.detach().cpu(), scale).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image, path: Path) -> None:
    """A uint8 tensor (3, H, W) or a PIL image, as PNG."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    image.save(path)


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


def heatmap_overlay(image, heat: torch.Tensor, alpha: float = 0.5):
    """A PIL image with ``heat`` (H, W) in [0, 1], the picture's size, drawn over it in the
    'jet' colours (blue cold, red hot), ``alpha`` of the heatmap."""
    from matplotlib import colormaps
    from PIL import Image

    colours = colormaps["jet"](heat.clamp(0, 1).cpu().numpy())[..., :3]  # (H, W, 3) in [0, 1]
    heat_image = Image.fromarray((colours * 255).astype("uint8"))
    return Image.blend(image.convert("RGB"), heat_image, alpha)


def heat_tile(image: torch.Tensor, heat: torch.Tensor, min_side: int = 96) -> torch.Tensor:
    """uint8 (3, H, W) enlarged by a whole factor to at least ``min_side`` pixels a side, with
    ``heat`` (h, w) in [0, 1] drawn over it (``heatmap_overlay``): uint8 (3, H', W')."""
    import numpy as np
    from PIL import Image

    scale = max(1, math.ceil(min_side / min(image.shape[-2:])))
    big = enlarged(image.detach().cpu(), scale)
    heat = F.interpolate(heat.detach().cpu().float()[None, None], size=tuple(big.shape[-2:]),
                         mode="bilinear")[0, 0]  # fmt: skip
    picture = heatmap_overlay(Image.fromarray(big.permute(1, 2, 0).contiguous().numpy()), heat)
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1).contiguous()
