"""The shared part of every detection datamodule: the batch format, transforms and loaders.

A batch is ``(images, targets)``: ``images`` a list of float tensors (3, H, W) in [0, 1], not
normalised (torchvision's detectors normalise and resize themselves), ``targets`` a list of
dicts ``{"boxes": float (N, 4) x1, y1, x2, y2 in pixels of the returned image, "labels": int64
(N,) in 1..K, "iscrowd": int64 (N,), "image_id": int}``. Label 0 is the background, as in
torchvision, so ``num_classes`` is the number of object classes + 1. ``iscrowd`` marks objects
that evaluation should ignore (COCO crowd regions, VOC difficult objects); training targets
never hold them, so there it is all zeros. Images may differ in size, so nothing is stacked.
With region proposals on (``DetectionDataModule.use_proposals``, for R-CNN and Fast R-CNN) each
target also holds ``"proposals"``: float (P, 4) x1, y1, x2, y2 in the returned image's pixels,
best first, found on the original picture and moved with it by the resize and flip.
"""

import random

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from cnnlab.data import augment
from cnnlab.data.loaders import BuiltSplits
from cnnlab.data.proposals import ProposalSettings, proposals_for

SCALE_JITTER = (0.85, 1.15)  # train-time range of the random resize factor


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Keep images and targets as lists: detection images need not share a size."""
    images, targets = zip(*batch, strict=True) if batch else ((), ())
    return list(images), list(targets)


def make_target(boxes, labels, image_id: int, iscrowd=None) -> dict:
    """A target dict in the batch format, from anything ``torch.as_tensor`` takes."""
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    if iscrowd is None:
        iscrowd = torch.zeros_like(labels)
    iscrowd = torch.as_tensor(iscrowd, dtype=torch.int64).reshape(-1)
    return {"boxes": boxes, "labels": labels, "iscrowd": iscrowd, "image_id": int(image_id)}


class DetectionTransform:
    """Resize (shorter side to ``image_size``), then at train time a random horizontal flip and
    a mild random scale; the boxes are moved with the image (``tv_tensors.BoundingBoxes``).

    Takes a uint8 tensor (3, H, W) and a target dict, returns a float image in [0, 1] and the
    target with its boxes in the new image's pixels. ``image_size=None`` keeps the size.

    ``proposals``: Selective Search settings; the proposals of the original picture (cached,
    ``cnnlab.data.proposals``) go through the same resize and flip as the boxes, clipped to the
    image, as ``target["proposals"]``; the first ``max_proposals`` of them, by default
    ``proposals.max`` for a training transform and ``proposals.eval_max`` otherwise (the
    datamodule says which split, since ``train`` is also false for an unaugmented train split).
    """

    def __init__(
        self,
        image_size: int | None,
        train: bool,
        hflip: float = 0.5,
        color_jitter: float = 0.0,
        proposals: ProposalSettings | None = None,
        max_proposals: int | None = None,
    ) -> None:
        self.image_size, self.train, self.hflip = image_size, train, hflip
        self.colour = v2.Compose(augment.colour(color_jitter)) if train and color_jitter else None
        self.proposals = proposals
        if proposals is not None and max_proposals is None:
            max_proposals = proposals.limit(train)
        self.max_proposals = max_proposals

    def _short_side(self, height: int, width: int) -> int | None:
        side = self.image_size
        if self.train:
            side = (side or min(height, width)) * random.uniform(*SCALE_JITTER)
        return None if side is None else max(1, round(side))

    def __call__(self, image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
        height, width = image.shape[-2:]
        moved = {"boxes": target["boxes"]}
        if self.proposals is not None:  # found on the original picture, then moved with it
            moved["proposals"] = proposals_for(image, self.proposals)[: self.max_proposals]
        image = tv_tensors.Image(image)
        boxes = {
            name: tv_tensors.BoundingBoxes(b, format="XYXY", canvas_size=(height, width))
            for name, b in moved.items()
        }
        side = self._short_side(height, width)
        if side is not None and side != min(height, width):
            image = F.resize(image, [side], antialias=True)
            boxes = {name: F.resize(b, [side]) for name, b in boxes.items()}
        if self.train and random.random() < self.hflip:
            image = F.horizontal_flip(image)
            boxes = {name: F.horizontal_flip(b) for name, b in boxes.items()}
        if "proposals" in boxes:
            boxes["proposals"] = F.clamp_bounding_boxes(boxes["proposals"])
        image = F.to_dtype(image, torch.float32, scale=True)
        if self.colour is not None:  # the image's colours only: the boxes stay
            image = self.colour(image)
        target = {**target, **{n: b.as_subclass(torch.Tensor).float() for n, b in boxes.items()}}
        return image.as_subclass(torch.Tensor), target


class DetectionDataModule(BuiltSplits):
    """Base class: a subclass names its classes (``class_names``, usable before ``setup``) and
    builds the three split datasets in ``_build(train_tf, eval_tf) -> (train, val, test)``;
    each item of a dataset is ``(image, target)`` in the batch format above.

    ``drop_invalid_boxes``: a broken annotation (empty or outside box, unknown class, missing
    image) is a UserError naming the file; with true such boxes and images are left out and
    counted in ``self.dropped`` (logged once at setup).
    """

    task = "detection"
    in_channels = 3
    collate = staticmethod(collate)  # lists: pictures of different sizes and box counts

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 8,
        num_workers: int = 0,
        image_size: int | None = None,
        augment: bool = True,
        drop_invalid_boxes: bool = False,
        split_seed: int = 0,
        pin_memory: bool = False,
        color_jitter: float = 0.0,
    ) -> None:
        super().__init__(
            root, batch_size, num_workers, image_size, augment, split_seed, pin_memory, color_jitter
        )
        self.drop_invalid_boxes = drop_invalid_boxes
        self.dropped = {"boxes": 0, "images": 0}
        self.proposal_settings: ProposalSettings | None = None  # see use_proposals

    @property
    def class_names(self) -> list[str]:
        """The object classes in label order (label i + 1); the background is not named."""
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.class_names) + 1  # + background, label 0

    def use_proposals(self, settings: ProposalSettings | None) -> None:
        """Give every picture its Selective Search proposals, ``target["proposals"]``: the first
        ``settings.max`` on the training split, ``settings.eval_max`` on the others (None: off
        again). Called after ``setup``, the splits are built again with the new transforms."""
        self.proposal_settings = settings
        if self.train_set is not None:
            self.train_set = self.val_set = self.test_set = None
            self.setup()

    def transforms(self, train: bool) -> DetectionTransform:
        settings = self.proposal_settings
        return DetectionTransform(
            self.image_size,
            train=train and self.augment,
            color_jitter=self.color_jitter,
            proposals=settings,
            max_proposals=None if settings is None else settings.limit(train),
        )
