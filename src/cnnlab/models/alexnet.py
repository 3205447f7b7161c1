"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet classification with deep CNNs").

Two variants with the same layout (five convolutions, three overlapping 3x3/2 max pools, three
fully connected layers with dropout) and different widths:

- ``alexnet``: torchvision's 64-192-384-256-256, 61,100,840 parameters at 3 channels and 1,000
  classes; the state dict has torchvision's keys and shapes.
- ``alexnet_2012``: the paper's 96-256-384-384-256 with local response normalisation after the
  first two convolutions, 62,378,344 parameters on one tower; the first layer (11x11x3x96,
  stride 4, padding 2) has 34,944 parameters and gives 55x55x96 maps at 224x224.

``groups=2`` is the paper's two-GPU split: each GPU held half of every layer's maps, and conv2,
conv4 and conv5 read only the maps on their own GPU, i.e. grouped convolutions with two groups
(conv3 and the fully connected layers read both halves). That leaves 60,965,224 parameters.
``init="paper"`` is the paper's initialisation: every weight from N(0, 0.01), biases 1 in conv2,
conv4, conv5 and the two hidden fully connected layers (so the ReLUs start with positive
inputs) and 0 elsewhere; ``init="torch"`` keeps torch's default layer initialisation.

The ImageNet stem needs at least 63x63 images; ``small_input=True`` swaps in a 3x3 stride-1
stem, 2x2 pools and a 1,024-wide classifier for 32x32 images (digits, CIFAR).
"""

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.parts import conv_stages, last_conv_name
from cnnlab.models.registry import register_model
from cnnlab.models.trunk import Trunk, pooled_trunk
from cnnlab.nn.layers import CONV2D, MAX_POOL2D

TASK = "classification"
ZOO_POSITION = 2  # where the family's rows go in the model table (cnnlab.summary.model_zoo)


def lrn() -> nn.LocalResponseNorm:
    """The paper's response normalisation, b = a / (k + alpha * sum a^2)^beta over n=5 neighbouring
    maps, alpha=1e-4, beta=0.75, k=2. torch's layer divides its alpha by n (Caffe's convention),
    so it is given n * 1e-4 = 5e-4 to apply the paper's 1e-4 to the sum."""
    return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)


def _out_size(n: int, layer: nn.Conv2d | nn.MaxPool2d) -> tuple[int, int, int, int]:
    """Output side of ``layer`` for an n-pixel side: (N - F + 2P) // S + 1, and its F, P, S."""
    f, p, s = (
        v if isinstance(v, int) else v[0] for v in (layer.kernel_size, layer.padding, layer.stride)
    )
    return (n - f + 2 * p) // s + 1, f, p, s


def check_input_size(features: nn.Sequential, height: int, width: int) -> None:
    """Refuse an image too small for ``features``, naming the layer and the size arithmetic."""
    h, w = height, width
    for i, layer in enumerate(features):
        if not isinstance(layer, CONV2D + MAX_POOL2D):  # torch's or the textbook's
            continue
        (h2, f, p, s), (w2, *_) = _out_size(h, layer), _out_size(w, layer)
        if min(h2, w2) < 1:
            n = min(h, w)
            raise UserError(
                f"AlexNet's layer features.{i} ({type(layer).__name__} {f}x{f}, stride {s}, "
                f"padding {p}) gets {h}x{w} maps from a {height}x{width} image: "
                f"(N - F + 2P)/S + 1 = ({n} - {f} + 2*{p})/{s} + 1 = {(n - f + 2 * p) // s + 1} "
                f"< 1. The ImageNet layout needs images of at least 63x63; for small images "
                f"set model.small_input=true, or raise data.image_size."
            )
        h, w = h2, w2


class AlexNet(nn.Module):
    """conv-relu[-lrn]-pool x2, conv-relu x3, pool, adaptive average pool, 3 linear layers."""

    head_names = ("classifier",)  # the fully connected layers; fine-tuning swaps or retrains them

    def __init__(
        self,
        widths: tuple[int, int, int, int, int],
        lrn_after: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        dropout: float = 0.5,
        groups: int = 1,
        init: str = "torch",
    ) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.small_input = small_input
        g = _check_groups(groups, widths)  # conv2, conv4, conv5: one group per GPU
        if small_input:  # 32x32: 3x3/1 stem, 2x2 pools -> 16, 8, 4
            conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
            conv2 = nn.Conv2d(c1, c2, 3, padding=1, groups=g)
            pool, side, hidden = (lambda: nn.MaxPool2d(2)), 4, 1024
        else:  # 224x224: 11x11/4 stem -> 55, overlapping 3x3/2 pools -> 27, 13, 6
            conv1 = nn.Conv2d(in_channels, c1, 11, stride=4, padding=2)
            conv2 = nn.Conv2d(c1, c2, 5, padding=2, groups=g)
            pool, side, hidden = (lambda: nn.MaxPool2d(3, stride=2)), 6, 4096
        norm = [lrn()] if lrn_after else []
        self.features = nn.Sequential(
            conv1, nn.ReLU(inplace=True), *norm, pool(),  # (B, c1, 27, 27) at 224
            conv2, nn.ReLU(inplace=True), *[lrn() for _ in norm], pool(),  # (B, c2, 13, 13)
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),  # reads both towers
            nn.Conv2d(c3, c4, 3, padding=1, groups=g), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1, groups=g), nn.ReLU(inplace=True),
            pool(),  # (B, c5, 6, 6) at 224, (B, c5, 4, 4) at 32 with small_input
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d(side)  # the identity at the sizes above
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c5 * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        _initialise(self, init)

    @property
    def cam_layer(self) -> str:
        """The last convolution of ``features``: the maps Grad-CAM weighs."""
        return last_conv_name(self.features)

    def trunk(self) -> Trunk:
        """``features`` cut after each of the three max pools."""
        return pooled_trunk(self.features)

    def finetune_stages(self) -> list[list[nn.Module]]:
        """One stage per convolution (with its ReLU, LRN and pool): ``finetune.trainable_layers
        =N`` trains the last N convolutions."""
        return conv_stages(self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.small_input:
            check_input_size(self.features, x.shape[-2], x.shape[-1])
        x = self.avgpool(self.features(x))  # (B, c5, side, side)
        return self.classifier(torch.flatten(x, 1))


def _check_groups(groups: int, widths: tuple[int, ...]) -> int:
    if groups < 1 or any(w % groups for w in widths):
        raise UserError(
            f"model.groups={groups}: the towers split every layer's maps ({widths}) evenly, so "
            "groups must divide them all; the paper's two GPUs are model.groups=2, one tower 1."
        )
    return groups


def _initialise(net: AlexNet, init: str) -> None:
    """``torch``: as the layers were built. ``paper``: weights N(0, 0.01); biases 1 in conv2,
    conv4, conv5, fc6 and fc7, 0 in conv1, conv3 and the output layer (section 5)."""
    if init == "torch":
        return
    if init != "paper":
        raise UserError(
            f"model.init={init!r}: AlexNet knows torch (torch's default layer initialisation) "
            "and paper (Krizhevsky et al.'s: N(0, 0.01) weights, biases 1 in conv2, conv4, "
            "conv5, fc6, fc7)."
        )
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    ones = {id(convs[1]), id(convs[3]), id(convs[4]), id(linears[0]), id(linears[1])}
    for layer in convs + linears:
        nn.init.normal_(layer.weight, 0.0, 0.01)
        nn.init.constant_(layer.bias, 1.0 if id(layer) in ones else 0.0)


def _alexnet(widths: tuple[int, int, int, int, int], lrn_after: bool, **kwargs) -> AlexNet:
    return AlexNet(widths, lrn_after, **kwargs)


@register_model("alexnet", torchvision_weights=True)
def alexnet(**kwargs) -> AlexNet:
    return _alexnet((64, 192, 384, 256, 256), lrn_after=False, **kwargs)


@register_model("alexnet_2012")
def alexnet_2012(**kwargs) -> AlexNet:
    return _alexnet((96, 256, 384, 384, 256), lrn_after=True, **kwargs)
