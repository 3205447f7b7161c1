"""Per-split image pipelines, with torchvision.transforms.v2: classification's, and the joint
image-and-mask one of segmentation; ImageNet's normalisation statistics. Light on purpose (no
datamodule, no Lightning): prediction from an exported model builds its input with these."""

from collections.abc import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from cnnlab.data import augment

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


IGNORE_INDEX = 255


class SegmentationTransform:
    """Image uint8 (3, H, W) and mask (H, W) -> normalised float image and int64 mask.

    Resizes both to ``image_size`` x ``image_size`` when set (the mask with nearest neighbour);
    at train time also flips both horizontally at random.
    """

    def __init__(
        self, image_size: int | None, train: bool, hflip: float = 0.5, color_jitter: float = 0.0
    ) -> None:
        steps: list[v2.Transform] = []
        if image_size is not None:
            steps.append(v2.Resize((image_size, image_size), antialias=True))
        if train and hflip > 0:
            steps.append(v2.RandomHorizontalFlip(hflip))
        steps.append(v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True))
        if train:
            steps += augment.colour(color_jitter)  # v2 leaves a Mask's values alone
        steps.append(v2.Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)))
        self.pipeline = v2.Compose(steps)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()
