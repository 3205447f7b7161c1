"""The shared part of every segmentation datamodule: the batch format, joint transforms, loaders.

A batch is ``(images, masks)``: ``images`` float (B, 3, H, W) normalised with ImageNet's mean
and std, ``masks`` int64 (B, H, W) holding a class id per pixel, 0 the background and
``IGNORE_INDEX`` (255) for pixels that neither loss nor metrics count. Image and mask go through
the same transforms (torchvision.transforms.v2 with ``tv_tensors.Mask``), so a resize or flip
moves both; masks are resized with nearest neighbour, so no new ids appear.
"""

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from cnnlab.data import augment
from cnnlab.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.data.loaders import BuiltSplits

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


class SegmentationDataModule(BuiltSplits):
    """Base class: a subclass names its classes (``class_names``, background first, usable
    before ``setup``) and builds the three split datasets in ``_build(train_tf, eval_tf)``;
    each item of a dataset is ``(image, mask)`` in the batch format above."""

    task = "segmentation"
    in_channels = 3
    ignore_index = IGNORE_INDEX

    @property
    def class_names(self) -> list[str]:
        """Every class in id order; index 0 is "background"."""
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def transforms(self, train: bool) -> SegmentationTransform:
        train = train and self.augment
        return SegmentationTransform(self.image_size, train=train, color_jitter=self.color_jitter)
