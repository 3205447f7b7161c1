"""Fully convolutional networks (Long et al. 2015): FCN-32s, FCN-16s and FCN-8s.

On a VGG backbone the builders below return the paper's network (``fcn_paper.PaperFCN``): the
classifier's fc6 and fc7 become convolutions, the first convolution pads by 100 and the
scores are cropped. Other backbones (ResNets, ...) have no fully connected layers worth
converting: ``FCN`` drops their classifier head (``trunk()`` cuts the network into stages) and
reads their last three stages, ResNet's layer2, layer3 and layer4 (strides 8, 16, 32).

A 1x1 score layer turns the last map into class scores, which a transposed convolution fixed
to bilinear interpolation brings back to the image size (FCN-32s; ``learn_final_upsampling``
lets it learn, from bilinear). FCN-16s first upsamples the scores 2x with a learned C x C
transposed convolution (bilinear at the start) and adds the scores of the stage before;
FCN-8s adds one more stage's. Those skip score layers start at zero, so a fresh FCN-16s
predicts what its FCN-32s part does. The output is (B, num_classes, H, W) for any input
(B, 3, H, W), odd sizes included: maps are cropped or edge-padded at the bottom and right
where strides do not divide the size. The network carries ``task = "segmentation"``.
"""

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.fcn_paper import PaperFCN
from cnnlab.models.trunk import StageTaps, freeze_stages, tap_strides, trunk_of
from cnnlab.models.upsampling import BilinearUpsample, fit_to

TASK = "segmentation"


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
        learn_final_upsampling: bool = False,
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
        strides = tap_strides(self.features)
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
            BilinearUpsample(num_classes, strides[i + 1] // strides[i], full=True)
            for i in range(skips)
        )
        self.final_up = BilinearUpsample(num_classes, strides[0], learnable=learn_final_upsampling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        maps = self.features(x)
        scores = self.score(self.head(maps[-1]))
        for i in reversed(range(len(self.skip_scores))):  # coarse to fine
            skip = self.skip_scores[i](maps[i])
            scores = fit_to(self.skip_ups[i](scores), *skip.shape[-2:]) + skip
        return fit_to(self.final_up(scores), height, width)


def check_segmenter_inputs(model: str, backbone, num_classes: int, in_channels: int) -> None:
    """What every segmenter on a cnnlab backbone needs: a built network, RGB, 2+ classes.
    ``model`` starts the RGB message ("FCNs here take", "DeepLab takes")."""
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"backbone must be a built network, not a {type(backbone).__name__}")
    if in_channels != 3:
        raise UserError(
            f"{model} RGB images (in_channels=3), but the data gives {in_channels} "
            "channel(s). Use a segmentation data set with colour images."
        )
    if num_classes < 2:
        raise UserError(f"num_classes={num_classes}: segmentation needs the background and 1+.")


def _fcn(
    backbone: nn.Module,
    num_classes: int,
    in_channels: int,
    skips: int,
    head_channels: int = 0,
    dropout: float = 0.1,
    first_padding: int = 100,
    **kwargs,
) -> FCN | PaperFCN:
    check_segmenter_inputs("FCNs here take", backbone, num_classes, in_channels)
    if callable(getattr(backbone, "fc_as_convolutions", None)):  # VGG: the paper's own FCN
        return PaperFCN(backbone, num_classes, skips, first_padding=first_padding, **kwargs)
    return FCN(backbone, num_classes, skips, head_channels, dropout, **kwargs)


def fcn32s(backbone: nn.Module, num_classes: int, in_channels: int = 3, **kwargs) -> FCN | PaperFCN:
    """FCN-32s: the last stage's scores upsampled to the image in one step."""
    return _fcn(backbone, num_classes, in_channels, skips=0, **kwargs)


def fcn16s(backbone: nn.Module, num_classes: int, in_channels: int = 3, **kwargs) -> FCN | PaperFCN:
    """FCN-16s: FCN-32s plus the scores of the stage before (pool4 on VGG-16)."""
    return _fcn(backbone, num_classes, in_channels, skips=1, **kwargs)


def fcn8s(backbone: nn.Module, num_classes: int, in_channels: int = 3, **kwargs) -> FCN | PaperFCN:
    """FCN-8s: FCN-16s plus the scores of one more stage (pool3 on VGG-16)."""
    return _fcn(backbone, num_classes, in_channels, skips=2, **kwargs)
