"""The detector frame that R-CNN and Fast R-CNN share: pictures in, detections out, the regions
given from outside (Selective Search) rather than learnt.

Like torchvision's detectors it takes a list of pictures (3, H, W), values in 0..1, each of its
own size. It resizes each so that its shorter side is ``min_size`` (the longer at most
``max_size``; None keeps the size), normalises it, and maps its detections back to the
picture's own pixels. The regions of each picture come, in this order, from ``proposals`` (a
list of (n, 4) boxes in the picture's pixels, as the detection module passes them from the
data), from ``targets[i]["proposals"]`` in training, or else from Selective Search run here on
the picture itself (``cnnlab.data.proposals``, cached), which is what ``cnnlab-predict`` does.

In training (with targets) it returns {loss_classifier, loss_box_reg}; in eval a list of
{boxes, labels, scores}. A subclass says how a set of regions becomes feature vectors
(``region_features``) and how wide they are (``feature_width``).
"""

import torch
from torch import nn
from torch.nn import functional as F

from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.models.region_heads import (
    RegionSettings,
    detect_regions,
    region_loss,
    sample_training_regions,
)


class RegionDetector(nn.Module):
    task = "detection"

    def __init__(
        self,
        feature_width: int,
        num_classes: int,
        settings: RegionSettings,
        proposals: dict | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        image_mean=None,
        image_std=None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.proposal_settings = dict(proposals or {})
        self.min_size, self.max_size = min_size, max_size
        self.num_classes = num_classes  # C + 1, with the background
        self.cls_score = nn.Linear(feature_width, num_classes)
        self.bbox_pred = nn.Linear(feature_width, num_classes * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)  # the paper's initialisation
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)
        mean = IMAGENET_MEAN if image_mean is None else tuple(image_mean)
        std = IMAGENET_STD if image_std is None else tuple(image_std)
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1), persistent=False)

    def region_features(self, images: torch.Tensor, rois: list[torch.Tensor]) -> torch.Tensor:
        """Normalised pictures (N, 3, H, W), zero-padded to one size, and each picture's regions
        in its pixels -> (K, feature_width), the regions of all pictures in order."""
        raise NotImplementedError

    def _factor(self, height: int, width: int) -> float:
        if self.min_size is None:
            return 1.0
        factor = self.min_size / min(height, width)
        if self.max_size is not None and max(height, width) * factor > self.max_size:
            factor = self.max_size / max(height, width)
        return factor

    def prepare(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[float], list]:
        """Resize and normalise each picture, pad them into one batch (bottom and right, so no
        coordinate moves): the batch, each picture's scale factor and its new (height, width)."""
        resized, factors = [], []
        for image in images:
            factor = self._factor(*image.shape[-2:])
            if factor != 1.0:
                size = [max(1, round(s * factor)) for s in image.shape[-2:]]
                image = F.interpolate(
                    image[None], size=size, mode="bilinear", align_corners=False, antialias=True
                )[0]
            resized.append((image - self.mean) / self.std)
            factors.append(factor)
        sizes = [tuple(x.shape[-2:]) for x in resized]
        height, width = (max(s[i] for s in sizes) for i in (0, 1))
        batch = resized[0].new_zeros(len(resized), 3, height, width)
        for i, x in enumerate(resized):
            batch[i, :, : x.shape[1], : x.shape[2]] = x
        return batch, factors, sizes

    def _regions(self, images, targets, proposals) -> list[torch.Tensor]:
        if proposals is None and targets is not None and "proposals" in targets[0]:
            proposals = [t["proposals"] for t in targets]
        if proposals is None:
            proposals = [self._search(image) for image in images]
        return [p.to(images[0].device, torch.float32) for p in proposals]

    def _search(self, image: torch.Tensor) -> torch.Tensor:
        """Selective Search on the picture itself (the predict path): its first regions."""
        from cnnlab.data.proposals import ProposalSettings, proposals_for

        settings = ProposalSettings(**self.proposal_settings)
        pixels = (image.detach().cpu() * 255).round().clamp(0, 255).to(torch.uint8)
        cap = settings.max if self.training else settings.eval_max
        return proposals_for(pixels, settings)[:cap]

    def forward(
        self,
        images: list[torch.Tensor],
        targets: list[dict] | None = None,
        proposals: list[torch.Tensor] | None = None,
    ):
        if self.training and targets is None:
            raise ValueError("In training mode the detector needs the targets, for its loss.")
        regions = self._regions(images, targets, proposals)
        batch, factors, sizes = self.prepare(images)
        regions = [r * f for r, f in zip(regions, factors, strict=True)]
        if self.training:
            scaled = [
                {**t, "boxes": t["boxes"].to(batch) * f}
                for t, f in zip(targets, factors, strict=True)
            ]
            sampled = sample_training_regions(regions, scaled, self.settings)
            logits, deltas = self._heads(batch, sampled.rois)
            return region_loss(logits, deltas, sampled, self.settings.lambda_box)
        logits, deltas = self._heads(batch, regions)
        found = detect_regions(logits, deltas, regions, sizes, self.settings)
        for f, factor in zip(found, factors, strict=True):
            f["boxes"] = f["boxes"] / factor
        return found

    def _heads(self, batch: torch.Tensor, rois: list[torch.Tensor]):
        features = self.region_features(batch, rois)
        deltas = self.bbox_pred(features).view(len(features), self.num_classes, 4)
        return self.cls_score(features), deltas
