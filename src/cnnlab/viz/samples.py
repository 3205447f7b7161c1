"""A few test images with the model's predictions drawn on them (detection, segmentation)."""

import torch

from cnnlab.viz.boxes import TRUE_COLOR, draw_detections
from cnnlab.viz.images import image_grid, unnormalize
from cnnlab.viz.masks import mask_rows

SAMPLES = 4  # test images drawn: one row on the page


@torch.inference_mode()
def detection_samples(module, loader, class_names=None, count: int = SAMPLES) -> torch.Tensor:
    """uint8 grid (3, H, W) of the first ``count`` test images: true boxes in green, predicted
    boxes (score at least the module's ``draw_score_threshold``) in red with their scores."""
    threshold = getattr(module, "draw_score_threshold", 0.5)
    drawn: list[torch.Tensor] = []
    for images, targets in loader:
        images = list(images)[: count - len(drawn)]
        for image, target, pred in zip(images, targets, module.net(images), strict=False):
            picture = draw_detections(
                image, target["boxes"], target["labels"], None, class_names, TRUE_COLOR
            )
            keep = pred["scores"] >= threshold
            drawn.append(
                draw_detections(
                    picture,
                    pred["boxes"][keep],
                    pred["labels"][keep],
                    pred["scores"][keep],
                    class_names,
                )
            )
        if len(drawn) >= count:
            break
    return image_grid(drawn, columns=count)


@torch.inference_mode()
def segmentation_samples(module, loader, class_names=None, count: int = SAMPLES) -> torch.Tensor:
    """uint8 grid (3, H, W), one row per test image: [image | true mask | predicted mask]."""
    tiles: list[torch.Tensor] = []
    for images, masks in loader:
        images, masks = images[: count - len(tiles) // 3], masks[: count - len(tiles) // 3]
        out = module(images)
        scores = out[0] if isinstance(out, tuple) else out
        tiles += mask_rows(unnormalize(images), masks, scores.argmax(dim=1))
        if len(tiles) >= 3 * count:
            break
    return image_grid(tiles, columns=3)
