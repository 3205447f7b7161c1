"""VGG (Simonyan & Zisserman 2015, "Very deep convolutional networks for large-scale image
recognition").

``CONFIGS`` is the paper's Table 1, one column per key: a number is a 3x3 convolution with that
many filters ("conv3-64"), "conv1-256" a 1x1 convolution, "LRN" local response normalisation
and "M" a 2x2 max pool. Every column ends in five pools, so a 224x224 image leaves 7x7 maps and
a 32x32 image 1x1 maps. Layout, initialisation and parameter counts (vgg16: 138,357,544 at 3
channels and 1,000 classes) are torchvision's; ``_bn`` variants put batch norm after each
convolution, torch's or cnnlab's textbook one (``norm``).
"""

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.alexnet import lrn
from cnnlab.models.norm import NORM_LAYERS, norm_layer
from cnnlab.models.parts import last_conv_name
from cnnlab.models.registry import register_model
from cnnlab.models.trunk import Trunk, pooled_trunk

TASK = "classification"
ZOO_POSITION = 3  # where the family's rows go in the model table (cnnlab.summary.model_zoo)

Layer = int | str

# fmt: off
CONFIGS: dict[str, list[Layer]] = {
    "A":     [64,             "M", 128,      "M", 256, 256,                   "M",
              512, 512,                   "M", 512, 512,                   "M"],
    "A-LRN": [64, "LRN",      "M", 128,      "M", 256, 256,                   "M",
              512, 512,                   "M", 512, 512,                   "M"],
    "B":     [64, 64,         "M", 128, 128, "M", 256, 256,                   "M",
              512, 512,                   "M", 512, 512,                   "M"],
    "C":     [64, 64,         "M", 128, 128, "M", 256, 256, "conv1-256",      "M",
              512, 512, "conv1-512",      "M", 512, 512, "conv1-512",      "M"],
    "D":     [64, 64,         "M", 128, 128, "M", 256, 256, 256,              "M",
              512, 512, 512,              "M", 512, 512, 512,              "M"],
    "E":     [64, 64,         "M", 128, 128, "M", 256, 256, 256, 256,         "M",
              512, 512, 512, 512,         "M", 512, 512, 512, 512,         "M"],
}
# fmt: on


def make_layers(
    config: list[Layer], in_channels: int = 3, norm: str | None = None
) -> nn.Sequential:
    """The convolutional part of one column; ``norm`` adds batch norm after each convolution."""
    bn = None if norm is None else norm_layer(norm)
    layers: list[nn.Module] = []
    for entry in config:
        if entry == "M":
            layers.append(nn.MaxPool2d(2, stride=2))  # halves H and W
            continue
        if entry == "LRN":
            layers.append(lrn())
            continue
        kernel, width = (1, int(entry.split("-")[1])) if isinstance(entry, str) else (3, entry)
        layers.append(nn.Conv2d(in_channels, width, kernel, padding=kernel // 2))  # same H, W
        layers += [bn(width)] if bn is not None else []
        layers.append(nn.ReLU(inplace=True))
        in_channels = width
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """Convolutions (``make_layers``), adaptive average pool, classifier.

    The classifier is the paper's 4096-4096 with dropout after a 7x7 pool; with ``small_input``
    it is one linear layer from the 512 1x1 maps of a 32x32 image, as CIFAR VGGs do.
    """

    head_names = ("classifier",)  # the fully connected layers

    def __init__(
        self,
        features: nn.Sequential,
        num_classes: int = 1000,
        small_input: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.features = features
        # each 2x2 max pool halves the side (rounding down): the smallest image that keeps 1x1
        self.min_size = 2 ** sum(isinstance(m, nn.MaxPool2d) for m in features)
        if small_input:
            self.avgpool = nn.AdaptiveAvgPool2d(1)  # (B, 512, 1, 1)
            self.classifier = nn.Linear(512, num_classes)
        else:
            self.avgpool = nn.AdaptiveAvgPool2d(7)  # (B, 512, 7, 7)
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(4096, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(4096, num_classes),
            )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, tuple(NORM_LAYERS.values())):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def cam_layer(self) -> str:
        """The last convolution of ``features``: the maps Grad-CAM weighs."""
        return last_conv_name(self.features)

    def trunk(self) -> Trunk:
        """``features`` cut after each of the five max pools (strides 2 to 32)."""
        return pooled_trunk(self.features)

    def fc_as_convolutions(self) -> nn.Sequential:
        """The classifier made fully convolutional (Long et al. 2015), weights reshaped.

        fc6 reads the whole 7x7x512 map, so it is a 7x7 convolution with 4,096 filters; fc7
        and fc8 read a vector, so they are 1x1 convolutions. After ``features``, the result
        slides the classifier over a map of any size; on the 7x7 map of a 224x224 image it
        gives the classifier's logits, at 1x1. A ``small_input`` VGG (one linear layer after a
        global pool) has no fc6/fc7 to convert: it gets the paper's, freshly initialised.
        """
        classifier = self.classifier
        if isinstance(classifier, nn.Linear):  # small_input: the paper's fc6 to fc8, new weights
            classifier = VGG(nn.Sequential(), classifier.out_features).classifier
        first = classifier[0]
        convs = []
        for layer in classifier:
            if not isinstance(layer, nn.Linear):
                convs.append(layer)  # ReLU and dropout act the same on every position
                continue
            channels = 512 if layer is first else layer.in_features
            side = int((layer.in_features // channels) ** 0.5)  # 7 for fc6, 1 after it
            conv = nn.Conv2d(channels, layer.out_features, side)
            with torch.no_grad():
                conv.weight.copy_(layer.weight.reshape(conv.weight.shape))
                conv.bias.copy_(layer.bias)
            convs.append(conv)
        return nn.Sequential(*convs)

    def dilate(self, output_stride: int) -> None:
        """Keep the maps at 1/``output_stride`` of the image (16 or 8; 32 changes nothing).

        As DeepLab-LargeFOV does to VGG-16: the last pool (16), or the last two (8), become
        3x3 max pools of stride 1 and padding 1, and the convolutions after a pool changed this
        way are dilated by 2, so they see as far as before. The weights are untouched.
        """
        changed = {32: 0, 16: 1, 8: 2}.get(output_stride)
        if changed is None:
            raise UserError(
                f"model.output_stride={output_stride}: a VGG can keep its maps at 1/32, 1/16 "
                "or 1/8 of the image; choose 32, 16 or 8."
            )
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        for i in pools[len(pools) - changed :]:
            self.features[i] = nn.MaxPool2d(3, stride=1, padding=1)
        rate = 1
        for i, layer in enumerate(self.features):
            if i in pools[len(pools) - changed :]:
                rate *= 2
            elif isinstance(layer, nn.Conv2d) and rate > 1 and layer.kernel_size == (3, 3):
                layer.dilation, layer.padding = (rate, rate), (rate, rate)
        self.min_size = 2 ** (len(pools) - changed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_size:
            raise UserError(
                f"VGG takes images of at least {self.min_size}x{self.min_size} (its "
                f"{self.min_size.bit_length() - 1} max pools halve the side), got "
                f"{x.shape[-2]}x{x.shape[-1]}. Set data.image_size={self.min_size} or more."
            )
        x = self.avgpool(self.features(x))  # (B, 512, 7, 7), or (B, 512, 1, 1) with small_input
        return self.classifier(torch.flatten(x, 1))


def _vgg(
    column: str,
    batch_norm: bool,
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    dropout: float = 0.5,
    norm: str | None = None,
) -> VGG:
    if not batch_norm and norm is not None:
        raise UserError(
            f"model.norm={norm!r} is set, but VGG column {column} has no batch norm; "
            f"use its _bn variant (e.g. vgg16_bn) or drop model.norm."
        )
    norm = (norm or "torch") if batch_norm else None
    features = make_layers(CONFIGS[column], in_channels, norm)
    return VGG(features, num_classes, small_input, dropout)


@register_model("vgg11", torchvision_weights=True)
def vgg11(**kwargs) -> VGG:
    return _vgg("A", batch_norm=False, **kwargs)


@register_model("vgg11_lrn")
def vgg11_lrn(**kwargs) -> VGG:
    return _vgg("A-LRN", batch_norm=False, **kwargs)


@register_model("vgg13", torchvision_weights=True)
def vgg13(**kwargs) -> VGG:
    return _vgg("B", batch_norm=False, **kwargs)


@register_model("vgg16_c")
def vgg16_c(**kwargs) -> VGG:
    return _vgg("C", batch_norm=False, **kwargs)


@register_model("vgg16", torchvision_weights=True)
def vgg16(**kwargs) -> VGG:
    return _vgg("D", batch_norm=False, **kwargs)


@register_model("vgg19", torchvision_weights=True)
def vgg19(**kwargs) -> VGG:
    return _vgg("E", batch_norm=False, **kwargs)


@register_model("vgg11_bn", torchvision_weights=True)
def vgg11_bn(**kwargs) -> VGG:
    return _vgg("A", batch_norm=True, **kwargs)


@register_model("vgg13_bn", torchvision_weights=True)
def vgg13_bn(**kwargs) -> VGG:
    return _vgg("B", batch_norm=True, **kwargs)


@register_model("vgg16_bn", torchvision_weights=True)
def vgg16_bn(**kwargs) -> VGG:
    return _vgg("D", batch_norm=True, **kwargs)


@register_model("vgg19_bn", torchvision_weights=True)
def vgg19_bn(**kwargs) -> VGG:
    return _vgg("E", batch_norm=True, **kwargs)
