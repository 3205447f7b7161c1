"""torchvision's segmentation networks: FCN (Long et al. 2015) and DeepLabV3 (Chen et al. 2017).

Both put a head on a dilated ResNet-50 (layer3 and layer4 dilate instead of striding, so their
maps are 1/8 of the image) and upsample its scores bilinearly to the image: images (B, 3, H, W)
give scores (B, num_classes, H, W) for any H, W. With ``aux_loss`` a second FCN head scores
layer3; in training the network then returns ``(scores, aux_scores)`` and cnnlab's
SegmentationModule adds ``aux_weight`` times the auxiliary cross-entropy to the loss; in eval it
returns the scores alone. The network carries ``task = "segmentation"``; its state dict has
torchvision's keys.

Nothing downloads unless asked. ``weights`` (COCO_WITH_VOC_LABELS_V1 or DEFAULT: 21 Pascal VOC
classes, trained with the auxiliary head) loads the whole network, and the last 1x1 convolution
of each head is replaced by a fresh one when ``num_classes`` is not 21; ``weights_backbone``
(IMAGENET1K_V1, IMAGENET1K_V2 or DEFAULT) loads the ResNet-50 alone and is ignored with
``weights``.
"""

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.torchvision_weights import offline_as_user_error, weights_member

TASK = "segmentation"
VOC_CLASSES = 21  # the published weights: Pascal VOC's 20 classes and the background


class TorchvisionSegmenter(nn.Module):
    """torchvision's backbone, head and optional auxiliary head, returning tensors, not dicts."""

    def __init__(self, tv_net: nn.Module, aux_weight: float) -> None:
        super().__init__()
        self.task = TASK
        self.aux_weight = aux_weight
        self.backbone = tv_net.backbone  # {"out": layer4, "aux": layer3 when there is an aux head}
        self.classifier = tv_net.classifier
        self.aux_classifier = tv_net.aux_classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        size = x.shape[-2:]
        features = self.backbone(x)  # maps (B, 2048 / 1024, H/8, W/8)
        out = _upsample(self.classifier(features["out"]), size)
        if not self.training or self.aux_classifier is None:
            return out
        return out, _upsample(self.aux_classifier(features["aux"]), size)


def fcn_resnet50(num_classes: int, **kwargs) -> TorchvisionSegmenter:
    """torchvision's FCN on a dilated ResNet-50 (33.0M parameters at 21 classes, 35.3M with aux)."""
    return _torchvision_segmenter("fcn_resnet50", num_classes, **kwargs)


def deeplabv3_resnet50(num_classes: int, **kwargs) -> TorchvisionSegmenter:
    """torchvision's DeepLabV3 (ASPP head) on a dilated ResNet-50 (39.6M at 21 classes, 42.0M
    with aux)."""
    return _torchvision_segmenter("deeplabv3_resnet50", num_classes, **kwargs)


def _torchvision_segmenter(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    weights: str | None = None,
    weights_backbone: str | None = None,
    aux_loss: bool = False,
    aux_weight: float = 0.5,
) -> TorchvisionSegmenter:
    if in_channels != 3:
        raise UserError(
            f"{name} takes RGB images (in_channels=3), but the data gives {in_channels} "
            "channel(s). Use a segmentation data set with colour images."
        )
    if num_classes < 2:
        raise UserError(f"num_classes={num_classes}: segmentation needs the background and 1+.")
    member = weights_member(name, weights)
    pretrained = member is not None
    backbone_member = None if pretrained else weights_member("resnet50", weights_backbone)
    with offline_as_user_error(name, member if pretrained else backbone_member):
        tv_net = getattr(torchvision.models.segmentation, name)(
            weights=member,
            weights_backbone=backbone_member,  # None: torchvision's default would download
            # the published weights fix 21 classes and the aux head; both are adapted below
            num_classes=None if pretrained else num_classes,
            aux_loss=None if pretrained else aux_loss,
        )
    if pretrained and not aux_loss:
        tv_net.aux_classifier = None
        tv_net.backbone.return_layers.pop("layer3")  # layer3's map is no longer needed
    if pretrained and num_classes != VOC_CLASSES:
        for head in (tv_net.classifier, tv_net.aux_classifier):
            if head is not None:  # FCNHead and DeepLabHead both end in a 1x1 class conv
                head[-1] = nn.Conv2d(head[-1].in_channels, num_classes, 1)
    return TorchvisionSegmenter(tv_net, aux_weight)


def _upsample(scores: torch.Tensor, size: torch.Size) -> torch.Tensor:
    return F.interpolate(scores, size=size, mode="bilinear", align_corners=False)
