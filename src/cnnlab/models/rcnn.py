"""R-CNN (Girshick, Donahue, Darrell and Malik, "Rich feature hierarchies for accurate object
detection and semantic segmentation", CVPR 2014) and Fast R-CNN (Girshick, "Fast R-CNN",
ICCV 2015) on a cnnlab classification network, with Selective Search proposals.

The lecture's history of region-based detection, two steps of it:

- **R-CNN** warps every proposal's pixels to a fixed square (``crop_size``) and runs the whole
  convolutional network on each crop: the features of a region are the trunk's output on it,
  average-pooled. A picture with 300 proposals costs 300 forward passes.
- **Fast R-CNN**'s "main idea: calculate the convolutional feature map only once and reuse it".
  The trunk runs once per picture, cut where its stride reaches ``max_stride`` (16, as the
  paper's VGG-16 conv5 without pool5: ResNet's layer3, VGG's conv5); each proposal is
  max-pooled from that map into ``roi_size`` x ``roi_size`` bins (RoI pooling: ``roi_pool=
  "textbook"`` is ``cnnlab.nn.roi_pool``, written from its definition, ``"torchvision"`` is
  ``torchvision.ops.roi_pool``), then two fully connected layers of ``fc_hidden`` units.

Both then classify each region into C + 1 classes (0 the background) and move its box with
class-specific offsets, trained with the multi-task loss (``region_heads``); the proposals come
from Selective Search (``cnnlab.data.proposals``), computed once per picture and cached.

Where we depart from the papers: R-CNN's classes are scored by the fine-tuned network's softmax,
not by per-class SVMs trained afterwards (Fast R-CNN showed the softmax does as well), and its
warp takes the proposal's own pixels, without the 16 pixels of context the paper adds. Both
train from the true boxes as well as the proposals. ``num_classes`` counts the background.
"""

import math
from collections import OrderedDict

import torch
import torchvision
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.detection import check_backbone
from cnnlab.models.region_detector import RegionDetector
from cnnlab.models.region_heads import RegionSettings
from cnnlab.models.trunk import Trunk, freeze_stages, probing, trunk_of

TASK = "detection"
PROBE_SIZE = 256  # pixels of the blank picture that measures each layer's stride
CROP_BATCH = 256  # R-CNN's crops go through the network this many at a time in evaluation


class RCNN(RegionDetector):
    """Every region warped to ``crop_size`` and run through the trunk; build with ``rcnn``."""

    def __init__(self, body: nn.Module, channels: int, crop_size: int, **kwargs) -> None:
        super().__init__(channels, **kwargs)
        self.body, self.crop_size = body, crop_size
        self.pool = nn.AdaptiveAvgPool2d(1)

    def region_features(self, images: torch.Tensor, rois: list[torch.Tensor]) -> torch.Tensor:
        crops = torchvision.ops.roi_align(
            images,
            rois,
            output_size=self.crop_size,
            spatial_scale=1.0,
            sampling_ratio=2,
            aligned=True,
        )  # (K, 3, crop, crop): each region's pixels, warped (bilinear) to the square
        chunks = crops.split(CROP_BATCH) if not torch.is_grad_enabled() else [crops]
        if not len(crops):
            return crops.new_zeros(0, self.cls_score.in_features)
        return torch.cat([self.pool(self.body(c)).flatten(1) for c in chunks])


class FastRCNN(RegionDetector):
    """One feature map a picture, every region RoI-pooled from it; build with ``fast_rcnn``."""

    def __init__(
        self,
        body: nn.Module,
        channels: int,
        stride: int,
        roi_size: int,
        roi_pool: str,
        fc_hidden: int,
        dropout: float,
        **kwargs,
    ) -> None:
        super().__init__(fc_hidden, **kwargs)
        self.body, self.stride, self.roi_size, self.roi_pool = body, stride, roi_size, roi_pool
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * roi_size * roi_size, fc_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_hidden, fc_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def region_features(self, images: torch.Tensor, rois: list[torch.Tensor]) -> torch.Tensor:
        maps = self.body(images)  # (N, channels, H / stride, W / stride), once per picture
        if self.roi_pool == "textbook":
            from cnnlab.nn import roi_pool
        else:
            roi_pool = torchvision.ops.roi_pool
        pooled = roi_pool(maps, rois, self.roi_size, 1.0 / self.stride)  # (K, channels, 7, 7)
        return self.fc(pooled)


def _settings(kwargs: dict) -> RegionSettings:
    names = RegionSettings.__dataclass_fields__
    return RegionSettings(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})


def rcnn(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int = 3,
    crop_size: int = 64,
    trainable_layers: int | None = None,
    **kwargs,
) -> RCNN:
    """R-CNN on a built cnnlab classification network (its classifier dropped). Keyword
    arguments: ``RegionSettings``' fields (fg_iou, bg_iou, rois_per_image, fg_fraction,
    lambda_box, score_threshold, nms_iou, max_detections), ``proposals`` (Selective Search's
    settings), ``min_size``/``max_size``, ``image_mean``/``image_std``."""
    check_backbone(backbone, num_classes, in_channels)
    trunk = trunk_of(backbone)
    freeze_stages(trunk, trainable_layers)
    settings = _settings(kwargs)
    return RCNN(
        trunk.body, trunk.channels[-1], crop_size, num_classes=num_classes, settings=settings,
        **kwargs,
    )  # fmt: skip


def fast_rcnn(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int = 3,
    max_stride: int = 16,
    roi_size: int = 7,
    roi_pool: str = "textbook",
    fc_hidden: int = 4096,
    dropout: float = 0.5,
    trainable_layers: int | None = None,
    **kwargs,
) -> FastRCNN:
    """Fast R-CNN on a built cnnlab classification network, its trunk cut where the stride
    would pass ``max_stride``. Other keyword arguments as for ``rcnn``."""
    check_backbone(backbone, num_classes, in_channels)
    if roi_pool not in ("textbook", "torchvision"):
        raise UserError(f"model.roi_pool={roi_pool!r}: choose textbook or torchvision.")
    trunk = trunk_at_stride(trunk_of(backbone), max_stride)
    freeze_stages(trunk, trainable_layers)
    stride = _stride(trunk.body)
    settings = _settings(kwargs)
    return FastRCNN(
        trunk.body, trunk.channels[-1], stride, roi_size, roi_pool, fc_hidden, dropout,
        num_classes=num_classes, settings=settings, **kwargs,
    )  # fmt: skip


def _stride(body: nn.Module) -> int:
    with probing(body):
        side = body(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE)).shape[-1]
    return _power_of_two(PROBE_SIZE / side)


def _power_of_two(ratio: float) -> int:
    """A measured stride (256 / 15 = 17.1 for AlexNet's unpadded layers) as the 2^k it is."""
    return 2 ** round(math.log2(ratio))


def trunk_at_stride(trunk: Trunk, max_stride: int) -> Trunk:
    """The trunk's layers up to the last one whose output stride is at most ``max_stride``
    (ResNet: through layer3; VGG: conv5 without pool5), regrouped into the stages kept."""
    kept, x = [], torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE)
    with probing(trunk.body):
        for name, layer in trunk.body.named_children():
            x = layer(x)
            if _power_of_two(PROBE_SIZE / x.shape[-1]) > max_stride:
                break
            kept.append(name)
    if not kept:
        raise UserError(f"model.max_stride={max_stride}: the backbone's first layer already has a "
                        "larger stride; raise model.max_stride (16 is the paper's).")  # fmt: skip
    body = nn.Sequential(OrderedDict((n, trunk.body.get_submodule(n)) for n in kept))
    stages = [[n for n in stage if n in kept] for stage in trunk.stages]
    stages = [s for s in stages if s]
    channels = [_last_width(body, s) for s in stages]
    return Trunk(body, stages, channels)


def _last_width(body: nn.Sequential, stage: list[str]) -> int:
    convs = [m for n in stage for m in body.get_submodule(n).modules() if isinstance(m, nn.Conv2d)]
    if convs:
        return convs[-1].out_channels
    index = list(dict(body.named_children())).index(stage[0])
    earlier = [m for m in list(body.children())[:index] for m in m.modules()]
    return [m for m in earlier if isinstance(m, nn.Conv2d)][-1].out_channels
