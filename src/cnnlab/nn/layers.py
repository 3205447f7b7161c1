"""Module forms of the textbook convolution and pooling, interchangeable with torch's.

``Conv2d`` has torch.nn.Conv2d's parameter names, shapes and initialisation, so a state dict
moves between the two either way.
"""

import math

import torch
from torch import nn

from cnnlab.nn.conv import IntPair, conv2d, pair
from cnnlab.nn.pooling import avg_pool2d, max_pool2d


class Conv2d(nn.Module):
    """``out_channels`` filters of ``kernel_size`` x ``in_channels`` each, plus one bias each.

    ``stride``, ``padding`` and ``dilation`` mean what they mean in torch.nn.Conv2d, in the same
    order, so a torch layer's settings map onto this one; ``dilation`` only spaces the taps, so
    the weights, and the state dict, keep the same shape.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        self.dilation = pair(dilation)  # taps d apart; an attribute, not a buffer, as in torch
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: {in_channels} input and {out_channels} output channels must both "
                f"split evenly into groups={groups}"
            )
        self.groups = groups  # each group of filters reads its own C/groups input channels
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size, **factory)
        )  # (O, C/groups, kh, kw)
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: Kaiming-uniform weights with a=sqrt(5), i.e. U(-1/sqrt(fan_in), ...),
        and biases from the same range."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())  # fan_in = C/groups * kh * kw
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        settings = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}
        return conv2d(x, self.weight, self.bias, groups=self.groups, **settings)  # (B, O, H', W')

    def extra_repr(self) -> str:
        groups = f", groups={self.groups}" if self.groups > 1 else ""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}{groups}, "
            f"bias={self.bias is not None}"
        )


class _Pool2d(nn.Module):
    def __init__(
        self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """The largest value of each window, per channel (stride defaults to the kernel size);
    ``ceil_mode`` rounds the output size up, as torch's does."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__(kernel_size, stride, padding)
        self.ceil_mode = ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", ceil_mode=True" if self.ceil_mode else "")


class AvgPool2d(_Pool2d):
    """The mean of each window, per channel; padded zeros count, as in torch's default."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


# torch's class and the textbook one: model code that looks for a layer type (the first
# convolution, the pools that end a stage) accepts either, so model.layers=textbook keeps working
CONV2D = (nn.Conv2d, Conv2d)
MAX_POOL2D = (nn.MaxPool2d, MaxPool2d)
AVG_POOL2D = (nn.AvgPool2d, AvgPool2d)
