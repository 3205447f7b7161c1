"""Per-split image pipelines for classification, with torchvision.transforms.v2."""

from collections.abc import Sequence

import torch
from torchvision.transforms import v2

from cnnlab.data import augment


def classification_transforms(
    *,
    train: bool,
    image_size: int,
    native_size: int | None,
    mean: Sequence[float],
    std: Sequence[float],
    channels: int | None = None,
    shift: int = 0,
    hflip: bool = False,
    policy: str = "basic",
    random_erasing: float = 0.0,
    color_jitter: float = 0.0,
) -> v2.Compose:
    """Image (PIL or tensor) -> normalised float tensor (C, image_size, image_size).

    Training adds the augmentation of ``policy`` (``cnnlab.data.augment``): for ``basic``, the
    usual one for small images, a random shift of up to ``shift`` pixels (zero-pad every side,
    crop back to size) and, where a mirror image is still the same class, a horizontal flip;
    the searched policies add their operations after those, and ``random_erasing`` blanks a
    rectangle of the normalised image; ``color_jitter`` varies brightness, contrast, saturation
    and hue. ``channels`` converts grey to RGB or RGB to grey when
    set.
    """
    steps: list[v2.Transform] = [v2.ToImage()]
    if channels == 1:
        steps.append(v2.Grayscale(num_output_channels=1))
    elif channels == 3:
        steps.append(v2.RGB())
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if image_size != native_size:  # None: the images come in many sizes
        steps.append(v2.Resize((image_size, image_size), antialias=True))
    if train:
        steps += augment.geometric(policy, image_size, shift, hflip)
        steps += augment.photometric(policy, image_size)
        steps += augment.colour(color_jitter)
    steps.append(v2.Normalize(mean=list(mean), std=list(std)))
    if train:
        steps += augment.erasing(random_erasing)
    return v2.Compose(steps)
