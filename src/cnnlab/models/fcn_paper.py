"""FCN on VGG as Long et al. (2015) build it: the classifier itself made fully convolutional.

VGG's fully connected fc6 (25,088 -> 4,096) looks at the whole 7x7x512 pool5 map: it is a 7x7
convolution with 4,096 filters, and fc7 (4,096 -> 4,096) a 1x1 convolution. Reshaping their
weights (``VGG.fc_as_convolutions``) gives a network that slides the classifier over an image
of any size, and at 224x224 gives the classifier's own logits. A 1x1 score layer turns fc7's
map into class scores.

The first convolution pads by 100 pixels, so that a small image still leaves fc6 a 7x7 window;
the upsampled scores are then larger than the image and cropped back. Where to crop is read
off the layers: every layer maps an output position to the input position at its centre,
``x_in = stride * x_out + (kernel - 1) / 2 - padding`` (a transposed convolution the other way
round), and composing those maps from the image to each score map gives its offset
(``coordinate_map``); on VGG-16 the crops are the paper's 5 (pool4), 9 (pool3) and
19 / 27 / 31 pixels (32s / 16s / 8s).

Upsampling as in the paper: the 2x steps of FCN-16s and FCN-8s are learned C x C transposed
convolutions that start as bilinear interpolation, the last one (32x, 16x or 8x) stays fixed
bilinear unless ``learn_final_upsampling``. The skip score layers start at zero.
"""

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.trunk import StageTaps, freeze_stages, trunk_of
from cnnlab.models.upsampling import BilinearUpsample

TASK = "segmentation"
Map = tuple[float, float]  # (scale, offset): image position = scale * map position + offset


def layer_map(layer: nn.Module) -> Map:
    """The map from ``layer``'s output positions to its input's (identity for pointwise ones)."""
    if isinstance(layer, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
        k, s, p, d = (
            _first(getattr(layer, a, 1)) for a in ("kernel_size", "stride", "padding", "dilation")
        )
        span = d * (k - 1) + 1
        return float(s), (span - 1) / 2 - p
    if isinstance(layer, BilinearUpsample):
        return 1 / layer.factor, -((layer.kernel - 1) / 2 - layer.padding) / layer.factor
    return 1.0, 0.0


def coordinate_map(layers, start: Map = (1.0, 0.0)) -> Map:
    """Compose ``start`` (the input's map to the image) with each layer's, in order."""
    scale, offset = start
    for layer in layers:
        s, c = layer_map(layer)
        scale, offset = scale * s, scale * c + offset
    return scale, offset


def crop_offset(larger: Map, smaller: Map) -> int:
    """Where ``smaller``'s position 0 falls in ``larger`` (both on the same grid)."""
    if abs(larger[0] - smaller[0]) > 1e-9:
        raise ValueError(f"maps on different grids: {larger} and {smaller}")
    offset = (smaller[1] - larger[1]) / larger[0]
    if offset < 0 or offset != int(offset):
        raise UserError(
            f"the FCN's score maps do not line up (offset {offset}): pad the first convolution "
            "more (model.first_padding)."
        )
    return int(offset)


def _first(value) -> int:
    return value[0] if isinstance(value, tuple) else int(value)


class PaperFCN(nn.Module):
    """VGG's stages, its classifier as convolutions, scores fused from ``skips`` earlier pools
    (0: 32s, 1: 16s with pool4, 2: 8s with pool3 too), upsampled and cropped to the input."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        skips: int,
        learn_final_upsampling: bool = False,
        first_padding: int = 100,
        trainable_layers: int | None = None,
    ) -> None:
        super().__init__()
        self.task = TASK
        trunk = trunk_of(backbone)
        freeze_stages(trunk, trainable_layers)
        first = next(m for m in trunk.body.modules() if isinstance(m, nn.Conv2d))
        first.padding = (first_padding, first_padding)
        used = trunk.stages[-(skips + 1) :]
        self.features = StageTaps(trunk.body, [stage[-1] for stage in used])
        self.fc = backbone.fc_as_convolutions()[:-1]  # fc6, fc7 (with ReLU, dropout): no fc8
        width = self.fc[-3].out_channels
        self.score = nn.Conv2d(width, num_classes, 1)
        nn.init.zeros_(self.score.weight)  # as the paper's released nets start their scores
        nn.init.zeros_(self.score.bias)
        self.skip_scores = nn.ModuleList(
            nn.Conv2d(c, num_classes, 1) for c in trunk.channels[-(skips + 1) : -1]
        )
        for conv in self.skip_scores:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.skip_ups = nn.ModuleList(
            BilinearUpsample(num_classes, 2, full=True, padding=0) for _ in range(skips)
        )
        final = 32 // 2**skips
        self.final_up = BilinearUpsample(
            num_classes, final, learnable=learn_final_upsampling, padding=0
        )
        self.offsets = self._offsets(trunk, used)

    def _offsets(self, trunk, used) -> tuple[list[int], int]:
        """The crop of each skip's scores (finest first), and the final crop."""
        names = [name for name, _ in trunk.body.named_children()]
        maps = []
        for stage in used:
            upto = names.index(stage[-1]) + 1
            maps.append(coordinate_map(trunk.body[:upto]))
        scores = coordinate_map([*self.fc, self.score], maps[-1])
        skip_offsets = []
        for i in reversed(range(len(self.skip_scores))):  # coarse to fine, as forward runs
            scores = coordinate_map([self.skip_ups[i]], scores)
            skip_offsets.insert(0, crop_offset(maps[i], scores))
        final = coordinate_map([self.final_up], scores)
        return skip_offsets, crop_offset(final, (1.0, 0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        maps = self.features(x)
        scores = self.score(self.fc(maps[-1]))
        skip_offsets, final_offset = self.offsets
        for i in reversed(range(len(self.skip_scores))):
            scores = self.skip_ups[i](scores)
            h, w = scores.shape[-2:]
            o = skip_offsets[i]
            scores = scores + self.skip_scores[i](maps[i])[..., o : o + h, o : o + w]
        o = final_offset
        out = self.final_up(scores)[..., o : o + height, o : o + width]
        if out.shape[-2:] != (height, width):
            raise UserError(
                f"A {height}x{width} image is too small for this FCN; give it at least 32x32."
            )
        return out
