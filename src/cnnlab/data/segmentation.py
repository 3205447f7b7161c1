"""The shared part of every segmentation datamodule: the batch format, joint transforms, loaders.

A batch is ``(images, masks)``: ``images`` float (B, 3, H, W) normalised with ImageNet's mean
and std, ``masks`` int64 (B, H, W) holding a class id per pixel, 0 the background and
``IGNORE_INDEX`` (255) for pixels that neither loss nor metrics count. Image and mask go through
the same transforms (torchvision.transforms.v2 with ``tv_tensors.Mask``), so a resize or flip
moves both; masks are resized with nearest neighbour, so no new ids appear.
"""

from cnnlab.data.loaders import BuiltSplits
from cnnlab.data.transforms import IGNORE_INDEX, SegmentationTransform


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
