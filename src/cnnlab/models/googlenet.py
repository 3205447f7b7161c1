"""GoogLeNet, Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions").

A stem, nine Inception blocks (3a-3b, 4a-4e, 5a-5b, with max pools between the groups), global
average pooling, dropout and one linear layer. An Inception block runs four branches side by side
on the same maps and concatenates them: a 1x1 convolution; 1x1 reduce then 3x3; 1x1 reduce then
"5x5"; 3x3/1 max pool then a 1x1 projection. ``INCEPTION`` is the paper's Table 1. Two auxiliary
classifiers (after 4a and 4d, ``aux_logits=True``) add gradient to the middle of the network
during training; in training mode the network then returns ``(logits, aux1, aux2)`` (torchvision
orders them logits, aux2, aux1), otherwise the logits alone. ``aux_weight`` is their loss weight.

- ``googlenet``: torchvision's form, 6,624,904 parameters at 3 channels and 1,000 classes with
  the aux classifiers off, and torchvision's state dict keys and shapes. Every convolution is
  bias-free and followed by batch norm (eps=0.001; ``norm`` picks torch's or cnnlab's textbook
  layer) and ReLU; the "5x5" branch uses a 3x3 convolution, as torchvision's port does; the aux
  classifiers pool adaptively to 4x4. Initialisation is torchvision's (truncated normal, std 0.01).
- ``googlenet_2014``: the paper's network: convolutions with bias and ReLU, no batch norm, real
  5x5 convolutions, local response normalisation after the first max pool and after the 3x3 192
  convolution, 3x3/2 max pools throughout, dropout 0.4, aux classifiers with a 5x5/3 average pool.
  6,998,552 parameters (aux off); the paper's Table 1 sums to about 6.8M because it leaves out
  the biases and lists the 7x7 stem convolution as 2.7K (7*7*3*64 weights are 9,408).
  Initialisation is that of Caffe's bvlc_googlenet replication (the paper gives none):
  "xavier" weights, U(+-sqrt(3/fan_in)), convolution biases 0.2, linear biases 0.

``googlenet`` takes images of 15x15 and up, ``googlenet_2014`` (3x3/2 last pool) 31x31 and up;
the paper's aux classifiers need 14-16 px maps at 4a/4d, i.e. 223-270 px images
(``check_input_size`` refuses other sizes, naming the layer). The average pool at the end is
adaptive (the paper's 7x7/1 pool at 224). ``small_input=True`` swaps in a CIFAR-style stem for
32x32 images: a 3x3 stride-1 conv1, a 2x2 max pool to 16x16, conv2 and conv3, no second stem
pool, so the blocks run at 16x16 (3a-3b), 8x8 (4a-4e) and 4x4 (5a-5b) instead of 1x1; the
paper's aux pool becomes adaptive (4x4). Parameter names stay the same; only conv1's kernel
shape differs.
"""

from collections import OrderedDict
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.norm import NORM_LAYERS, norm_layer
from cnnlab.models.registry import register_model
from cnnlab.models.trunk import Trunk

TASK = "classification"
ZOO_POSITION = 4  # where the family's rows go in the model table (cnnlab.summary.model_zoo)

# block: (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), Table 1 of the paper
INCEPTION = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def lrn() -> nn.LocalResponseNorm:
    """bvlc_googlenet's response normalisation: 5 maps, alpha=1e-4, beta=0.75, k=1. Caffe, like
    torch, divides alpha by the 5 maps, so these are bvlc_googlenet's numbers as they stand."""
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


class ConvUnit(nn.Module):
    """Convolution, batch norm (then the convolution has no bias) or none (then it has), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride=1, padding=0, norm=None):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=norm is None)
        self.bn = None if norm is None else norm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.relu(x if self.bn is None else self.bn(x), inplace=True)


class Inception(nn.Module):
    """Four branches on the same maps, concatenated; H and W are kept."""

    def __init__(self, c_in, c1, c3_red, c3, c5_red, c5, pool_proj, unit, k5: int) -> None:
        super().__init__()
        self.branch1 = unit(c_in, c1, 1)
        self.branch2 = nn.Sequential(unit(c_in, c3_red, 1), unit(c3_red, c3, 3, padding=1))
        self.branch3 = nn.Sequential(unit(c_in, c5_red, 1), unit(c5_red, c5, k5, padding=k5 // 2))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), unit(c_in, pool_proj, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([b(x) for b in branches], 1)  # (B, c1 + c3 + c5 + pool_proj, H, W)


class InceptionAux(nn.Module):
    """Average pool to 4x4, 1x1 conv to 128 maps, fc 2048 -> 1024, ReLU, dropout, fc."""

    def __init__(self, c_in: int, num_classes: int, unit, pool: nn.Module, dropout: float):
        super().__init__()
        self.pool = pool
        self.conv = unit(c_in, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)  # (B, 2048)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


def _first(v: int | tuple[int, ...]) -> int:
    return v if isinstance(v, int) else v[0]


def _side(n: int, layer: nn.Module) -> int:
    """Output side of a convolution or (ceil-mode) pool for an n-pixel side, as torch has it."""
    k, s, p = (_first(getattr(layer, a)) for a in ("kernel_size", "stride", "padding"))
    ceil = getattr(layer, "ceil_mode", False)
    out = (n + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
    return out - 1 if ceil and (out - 1) * s >= n + p else out  # no window may start in padding


class GoogLeNet(nn.Module):
    """Stem, Inception 3a-3b, pool, 4a-4e, pool, 5a-5b, average pool, dropout, fc."""

    head_names = ("fc", "aux1", "aux2")  # absent aux classifiers are None and skipped
    cam_layer = "inception5b"  # the last Inception block: Grad-CAM's maps

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        aux_weight: float = 0.3,
        dropout: float = 0.2,
        aux_dropout: float = 0.7,
        small_input: bool | None = False,
        norm: str = "torch",
        paper: bool = False,
    ) -> None:
        super().__init__()
        self.small_input, self.paper = bool(small_input), paper
        self.aux_logits, self.aux_weight = aux_logits, aux_weight
        unit = partial(ConvUnit, norm=None if paper else partial(norm_layer(norm), eps=0.001))
        pool = partial(nn.MaxPool2d, 3, stride=2, ceil_mode=True)  # 56 -> 28 -> 14 -> 7 at 224
        if self.small_input:  # 32 -> 16 (2x2 pool); 3a-3b at 16, 4a-4e at 8, 5a-5b at 4
            self.conv1 = unit(in_channels, 64, 3, padding=1)
            self.maxpool1 = nn.MaxPool2d(2)
        else:  # 224 -> 112 -> 56
            self.conv1 = unit(in_channels, 64, 7, stride=2, padding=3)
            self.maxpool1 = pool()
        self.lrn1 = lrn() if paper else None
        self.conv2 = unit(64, 64, 1)
        self.conv3 = unit(64, 192, 3, padding=1)
        self.lrn2 = lrn() if paper else None
        self.maxpool2 = nn.Identity() if self.small_input else pool()  # (B, 192, 28, 28) at 224
        for name, widths in INCEPTION.items():
            setattr(self, f"inception{name}", Inception(*widths, unit, k5=5 if paper else 3))
        self.maxpool3 = pool()  # (B, 480, 14, 14) at 224
        self.maxpool4 = pool() if paper else nn.MaxPool2d(2, stride=2, ceil_mode=True)  # 7x7
        self.aux1 = self.aux2 = None
        if aux_logits:  # the paper's 5x5/3 average pool takes 14x14 maps to 4x4
            fixed = paper and not self.small_input
            aux_pool = partial(nn.AvgPool2d, 5, 3) if fixed else partial(nn.AdaptiveAvgPool2d, 4)
            self.aux1 = InceptionAux(512, num_classes, unit, aux_pool(), aux_dropout)  # after 4a
            self.aux2 = InceptionAux(528, num_classes, unit, aux_pool(), aux_dropout)  # after 4d
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # (B, 1024, 1, 1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear) and paper:
                nn.init.kaiming_uniform_(m.weight, a=1)  # gain 1: U(+-sqrt(3/fan_in))
                nn.init.constant_(m.bias, 0.2 if isinstance(m, nn.Conv2d) else 0.0)
            elif isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)
            elif isinstance(m, tuple(NORM_LAYERS.values())):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def trunk(self) -> Trunk:
        """Stem (192 channels, stride 8), 3a-3b (480, 8), 4a-4e (832, 16), 5a-5b (1024, 32)."""
        stem = ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2"]
        stem = [n for n in stem if getattr(self, n) is not None]
        stages = [stem, ["inception3a", "inception3b"]]
        stages.append(["maxpool3", *(f"inception4{c}" for c in "abcde")])
        stages.append(["maxpool4", "inception5a", "inception5b"])
        children = [(n, getattr(self, n)) for stage in stages for n in stage]
        widths = {
            name: sum(INCEPTION[name.removeprefix("inception")][i] for i in (1, 3, 5, 6))
            for name in ("inception3b", "inception4e", "inception5b")
        }  # an Inception block concatenates its 1x1, 3x3, 5x5 and pool-projection branches
        channels = [192, *(widths[stage[-1]] for stage in stages[1:])]
        return Trunk(nn.Sequential(OrderedDict(children)), stages, channels)

    def check_input_size(self, height: int, width: int) -> None:
        """Refuse an image too small for the strided layers (or the paper's aux pool), by name."""
        h, w = height, width
        strided = {"conv1": self.conv1.conv} | {f"maxpool{i}": None for i in (1, 2, 3, 4)}
        for name, layer in strided.items():
            layer = layer or getattr(self, name)
            if isinstance(layer, nn.Identity):  # maxpool2 with small_input
                continue
            h2, w2 = _side(h, layer), _side(w, layer)
            if min(h2, w2) < 1:
                k, s = _first(layer.kernel_size), _first(layer.stride)
                self._refuse(f"{name} ({k}x{k}, stride {s})", h, w, (height, width))
            h, w = h2, w2
            if name == "maxpool3" and self.training and self.aux1 is not None:  # maps at 4a, 4d
                if (
                    isinstance(self.aux1.pool, nn.AvgPool2d)
                    and not 14 <= min(h, w) <= max(h, w) <= 16
                ):
                    self._refuse("aux1.pool (5x5 average pool, stride 3)", h, w, (height, width))

    def _refuse(self, layer: str, h: int, w: int, image: tuple[int, int]) -> None:
        least = "31x31" if self.paper else "15x15"
        fix = "raise data.image_size" if self.small_input else "set model.small_input=true"
        need = f"maps that leave at least 1x1 (the ImageNet layout takes {least} images and up)"
        if "aux" in layer:
            need = "14x14 to 16x16 maps to pool them to 4x4 (images of 223-270 px)"
            fix += " or model.aux_logits=false"
        raise UserError(
            f"GoogLeNet's layer {layer} gets {h}x{w} maps from a {image[0]}x{image[1]} image; "
            f"it needs {need}. For small images {fix}."
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        self.check_input_size(x.shape[-2], x.shape[-1])
        x = self.maxpool1(self.conv1(x))  # (B, 64, 56, 56) at 224, (B, 64, 16, 16) small
        x = x if self.lrn1 is None else self.lrn1(x)
        x = self.conv3(self.conv2(x))
        x = self.maxpool2(x if self.lrn2 is None else self.lrn2(x))  # (B, 192, 28, 28)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (B, 480, 14, 14)
        x = self.inception4a(x)
        with_aux = self.training and self.aux1 is not None
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))  # (B, 832, 7, 7)
        x = self.inception5b(self.inception5a(x))  # (B, 1024, 7, 7)
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return (logits, aux1, aux2) if with_aux else logits


@register_model("googlenet", torchvision_weights=True)
def googlenet(**kwargs) -> GoogLeNet:
    return GoogLeNet(**kwargs)


@register_model("googlenet_2014")
def googlenet_2014(**kwargs) -> GoogLeNet:
    if "norm" in kwargs:
        raise UserError("googlenet_2014 has no batch norm, so model.norm does not apply to it.")
    return GoogLeNet(**{"dropout": 0.4, **kwargs}, paper=True)
