"""Faster R-CNN detectors (Ren et al. 2015): on a cnnlab backbone, or torchvision's own.

Every builder returns torchvision's ``FasterRCNN``, which takes a list of images (3, H, W) with
values in 0..1 (each may have its own size). In training mode, with targets (a list of
{"boxes": float (N, 4) as [x1, y1, x2, y2] pixels, "labels": int64 (N,)}, N may be 0), it
returns the losses {loss_classifier, loss_box_reg, loss_objectness, loss_rpn_box_reg}; in eval
mode a list of {"boxes", "labels", "scores"}, one per image. ``num_classes`` counts the
background as class 0. The network carries ``task = "detection"``.

Nothing downloads unless asked: torchvision's builders are called with ``weights=None`` and
``weights_backbone=None`` by default. Asked-for weights are read from the torch hub cache, or
downloaded into it, always with ``torch.load(weights_only=True)``.
"""

from collections.abc import Sequence

import torchvision
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from cnnlab.errors import UserError
from cnnlab.models.detection_backbones import feature_backbone
from cnnlab.models.parts import first_conv
from cnnlab.models.torchvision_weights import offline_as_user_error, weights_member

TASK = "detection"

# The backbone architecture behind each torchvision detector (for weights_backbone names).
TORCHVISION_DETECTORS = {
    "fasterrcnn_resnet50_fpn": "resnet50",
    "fasterrcnn_resnet50_fpn_v2": "resnet50",
    "fasterrcnn_mobilenet_v3_large_fpn": "mobilenet_v3_large",
}


def fasterrcnn(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int = 3,
    fpn: bool = True,
    out_channels: int = 256,
    fpn_stages: int = 3,
    anchor_sizes: Sequence[Sequence[int]] | None = None,
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    min_size: int = 800,
    max_size: int = 1333,
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_test: int = 1000,
    rpn_batch_size_per_image: int = 256,
    box_batch_size_per_image: int = 512,
    box_detections_per_img: int = 100,
    box_score_thresh: float = 0.05,
    trainable_layers: int | None = None,
) -> FasterRCNN:
    """Faster R-CNN on a built cnnlab classification network (its head is dropped).

    With ``fpn`` the detector sees ``fpn_stages + 1`` feature maps (see
    ``detection_backbones``), one anchor size list per map in ``anchor_sizes``; without, one
    map, and all of ``anchor_sizes`` is used on it. None: 32, 64, 128, ... one per map.
    Defaults are torchvision's (800-pixel images); configs/model/fasterrcnn.yaml has values for
    small images. ``image_mean`` / ``image_std`` None: ImageNet's.
    """
    check_backbone(backbone, num_classes, in_channels)
    trunk, maps = feature_backbone(backbone, fpn, out_channels, fpn_stages, trainable_layers)
    sizes = _anchor_levels(anchor_sizes, len(maps))
    anchors = AnchorGenerator(sizes, (tuple(float(r) for r in aspect_ratios),) * len(sizes))
    roi_maps = [m for m in maps if m != "pool"]  # RoIs are pooled from the pyramid's own maps
    net = FasterRCNN(
        trunk,
        num_classes=num_classes,
        min_size=min_size,
        max_size=max_size,
        image_mean=None if image_mean is None else list(image_mean),
        image_std=None if image_std is None else list(image_std),
        rpn_anchor_generator=anchors,
        box_roi_pool=MultiScaleRoIAlign(roi_maps, output_size=7, sampling_ratio=2),
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=rpn_batch_size_per_image,
        box_batch_size_per_image=box_batch_size_per_image,
        box_detections_per_img=box_detections_per_img,
        box_score_thresh=box_score_thresh,
    )
    net.task = TASK
    return net


def fasterrcnn_resnet50_fpn(num_classes: int, **kwargs) -> FasterRCNN:
    """torchvision's Faster R-CNN, ResNet-50 FPN (41.8M parameters at 91 classes)."""
    return _torchvision_detector("fasterrcnn_resnet50_fpn", num_classes, **kwargs)


def fasterrcnn_resnet50_fpn_v2(num_classes: int, **kwargs) -> FasterRCNN:
    """torchvision's improved Faster R-CNN, ResNet-50 FPN v2 (Li et al. 2021; 43.7M at 91)."""
    return _torchvision_detector("fasterrcnn_resnet50_fpn_v2", num_classes, **kwargs)


def fasterrcnn_mobilenet_v3_large_fpn(num_classes: int, **kwargs) -> FasterRCNN:
    """torchvision's Faster R-CNN, MobileNetV3-Large FPN (19.4M parameters at 91 classes)."""
    return _torchvision_detector("fasterrcnn_mobilenet_v3_large_fpn", num_classes, **kwargs)


def _torchvision_detector(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    weights: str | None = None,
    weights_backbone: str | None = None,
    trainable_backbone_layers: int | None = None,
    min_size: int = 800,
    max_size: int = 1333,
    **detector_kwargs,
) -> FasterRCNN:
    """Build torchvision's ``name``; with ``weights``, its 91-class COCO head is swapped for a
    ``num_classes`` one (a fresh FastRCNNPredictor)."""
    check_rgb(in_channels)
    check_classes(num_classes)
    builder = getattr(torchvision.models.detection, name)
    member = weights_member(name, weights)
    backbone_member = weights_member(TORCHVISION_DETECTORS[name], weights_backbone)
    asked = member if member is not None else backbone_member
    with offline_as_user_error(name, asked):
        net = builder(
            weights=member,
            weights_backbone=backbone_member,
            num_classes=None if member is not None else num_classes,
            trainable_backbone_layers=trainable_backbone_layers,
            min_size=min_size,
            max_size=max_size,
            **detector_kwargs,
        )
    if member is not None:
        cls_score = net.roi_heads.box_predictor.cls_score
        net.roi_heads.box_predictor = FastRCNNPredictor(cls_score.in_features, num_classes)
    net.task = TASK
    return net


def _anchor_levels(
    anchor_sizes: Sequence[Sequence[int] | int] | None, levels: int
) -> tuple[tuple[int, ...], ...]:
    """One tuple of anchor sizes per feature map; with one map, all sizes go on it."""
    if anchor_sizes is None:
        return tuple((32 * 2**i,) for i in range(levels))  # torchvision's 32, 64, ... per level
    sizes = [(int(s),) if isinstance(s, int) else tuple(int(v) for v in s) for s in anchor_sizes]
    if levels == 1:
        return (tuple(sorted({v for level in sizes for v in level})),)
    if len(sizes) != levels:
        raise UserError(
            f"model.anchor_sizes has {len(sizes)} levels ({sizes}), but the backbone gives "
            f"{levels} feature maps (model.fpn_stages + 1 with the FPN): give one list of sizes "
            f"per map, finest first, e.g. {[[16 * 2**i] for i in range(levels)]}."
        )
    return tuple(sizes)


def check_backbone(backbone: nn.Module, num_classes: int, in_channels: int) -> None:
    """Refuse what no detector on a cnnlab backbone can take: grey data, fewer than two classes,
    a backbone that is not a built network or was built for other than 3 channels."""
    check_rgb(in_channels)
    check_classes(num_classes)
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"backbone must be a built network, not a {type(backbone).__name__}")
    if first_conv(backbone)[1].in_channels != 3:
        raise UserError(
            f"The detection backbone {type(backbone).__name__} was built for "
            f"{first_conv(backbone)[1].in_channels}-channel images; detection takes RGB images: "
            f"build it with in_channels=3."
        )


def check_rgb(in_channels: int) -> None:
    if in_channels != 3:
        raise UserError(
            f"Detection takes RGB images, but the data gives {in_channels}-channel images: set "
            f"data.channels=3 (or null to keep the images' own channels, RGB for detection data)."
        )


def check_classes(num_classes: int) -> None:
    if num_classes < 2:
        raise UserError(
            f"A detector needs num_classes >= 2 (the object classes plus the background, "
            f"class 0), got {num_classes}."
        )
