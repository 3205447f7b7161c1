"""Fully convolutional networks (Long et al. 2015): FCN-32s, FCN-16s and FCN-8s.

The classifier head of a cnnlab classification network is dropped (its ``trunk()`` cuts it
into stages) and its last three stages give the maps the FCN reads: for VGG-16 pool3,
pool4 and pool5 (strides 8, 16, 32), for ResNet layer2, layer3 and layer4 (the same strides).
A 1x1 score layer turns the last map into class scores, which a learned transposed convolution,
initialised to bilinear interpolation, brings back to the image size (FCN-32s). FCN-16s first
upsamples the scores 2x and adds the scores of the stage before (pool4); FCN-8s adds pool3's
too. Those skip score layers start at zero, so a fresh FCN-16s predicts what its FCN-32s part
does. The output is (B, num_classes, H, W) for any input (B, 3, H, W), odd sizes included:
maps are cropped or edge-padded at the bottom and right where strides do not divide the size.
The network carries ``task = "segmentation"``.
"""

import math

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.trunk import freeze_stages, trunk_of
from cnnlab.models.upsampling import BilinearUpsample, fit_to

TASK = "segmentation"
PROBE_SIZE = 128  # pixels of the blank image that measures each stage's stride


class StageTaps(nn.Module):
    """Runs a trunk's body and returns the outputs of the named layers, in order."""

    def __init__(self, body: nn.Sequential, taps: list[str]) -> None:
        super().__init__()
        self.body, self.taps = body, taps

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for name, layer in self.body.named_children():
            x = layer(x)
            if name in self.taps:
                out.append(x)
                if len(out) == len(self.taps):
                    break
        return out


class FCN(nn.Module):
    """Score the last stage, then fuse ``skips`` earlier stages (0: 32s, 1: 16s, 2: 8s)."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        skips: int,
        head_channels: int = 0,
        dropout: float = 0.1,
        trainable_layers: int | None = None,
    ) -> None:
        super().__init__()
        self.task = TASK
        trunk = trunk_of(backbone)
        if len(trunk.stages) < skips + 1:
            raise UserError(
                f"FCN with {skips} skip(s) needs {skips + 1} backbone stages; the "
                f"{type(backbone).__name__} trunk has {len(trunk.stages)}. Choose fcn32s or "
                "another model/backbone."
            )
        freeze_stages(trunk, trainable_layers)
        used = trunk.stages[-(skips + 1) :]
        self.features = StageTaps(trunk.body, [stage[-1] for stage in used])
        strides = self._strides()
        channels = trunk.channels[-(skips + 1) :]
        self.head = nn.Identity()
        if head_channels:
            self.head = nn.Sequential(
                nn.Conv2d(channels[-1], head_channels, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Dropout2d(dropout),
            )
        last = head_channels or channels[-1]
        self.score = nn.Conv2d(last, num_classes, 1)
        # finest first: the skip scores and the 2x-style upsampling from the next coarser map
        self.skip_scores = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in channels[:-1])
        for conv in self.skip_scores:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.skip_ups = nn.ModuleList(
            BilinearUpsample(num_classes, strides[i + 1] // strides[i]) for i in range(skips)
        )
        self.final_up = BilinearUpsample(num_classes, strides[0])

    @torch.no_grad()
    def _strides(self) -> list[int]:
        """Each used stage's stride, measured on a blank image (the trunk is left unchanged)."""
        was_training = self.features.training
        self.features.eval()
        maps = self.features(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE))
        self.features.train(was_training)
        # the nearest power of two: a stage without padding shrinks a little more than its stride
        return [2 ** max(0, round(math.log2(PROBE_SIZE / m.shape[-1]))) for m in maps]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        maps = self.features(x)
        scores = self.score(self.head(maps[-1]))
        for i in reversed(range(len(self.skip_scores))):  # coarse to fine
            skip = self.skip_scores[i](maps[i])
            scores = fit_to(self.skip_ups[i](scores), *skip.shape[-2:]) + skip
        return fit_to(self.final_up(scores), height, width)


def _fcn(backbone: nn.Module, num_classes: int, in_channels: int, skips: int, **kwargs) -> FCN:
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"backbone must be a built network, not a {type(backbone).__name__}")
    if in_channels != 3:
        raise UserError(
            f"FCNs here take RGB images (in_channels=3), but the data gives {in_channels} "
            "channel(s). Use a segmentation data set with colour images."
        )
    if num_classes < 2:
        raise UserError(f"num_classes={num_classes}: segmentation needs the background and 1+.")
    return FCN(backbone, num_classes, skips, **kwargs)


def fcn32s(backbone: nn.Module, num_classes: int, in_channels: int = 3, **kwargs) -> FCN:
    """FCN-32s: the last stage's scores upsampled to the image in one step."""
    return _fcn(backbone, num_classes, in_channels, skips=0, **kwargs)


def fcn16s(backbone: nn.Module, num_classes: int, in_channels: int = 3, **kwargs) -> FCN:
    """FCN-16s: FCN-32s plus the scores of the stage before (pool4 on VGG-16)."""
    return _fcn(backbone, num_classes, in_channels, skips=1, **kwargs)


def fcn8s(backbone: nn.Module, num_classes: int, in_channels: int = 3, **kwargs) -> FCN:
    """FCN-8s: FCN-16s plus the scores of one more stage (pool3 on VGG-16)."""
    return _fcn(backbone, num_classes, in_channels, skips=2, **kwargs)
