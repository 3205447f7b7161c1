"""Receptive fields: how much of the image one unit of a layer sees, over one forward pass.

The lecture's recurrence, for a layer of kernel k, dilation d and stride s:

    r_out = r_in + (k_eff - 1) * j_in,   j_out = j_in * s,   k_eff = d(k - 1) + 1

r is the side of the square of input pixels one output unit sees, j (the jump) how many input
pixels apart neighbouring units are; the image itself has r = j = 1. Elementwise layers (ReLU,
batch norm, dropout, LRN) keep both. A fully connected layer sees what its whole input map
sees, r + (side - 1) * j, and so does a global pooling; that "span" travels with a flattened map.

Windowed layers are read from their modules (torch's and cnnlab's textbook ones alike); every
other op passes the largest r of its inputs, and their common jump, on to its outputs, which is
what a residual add or an Inception concat needs, so branches are followed without assuming a
chain. Values are not clipped to the image: a unit of ResNet-18's layer4 sees 435 pixels, most
of them padding on a 224 input.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from cnnlab import nn as textbook

WINDOWED = (
    nn.Conv2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    textbook.Conv2d,
    textbook.MaxPool2d,
    textbook.AvgPool2d,
)


def pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def window(module: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Kernel, stride and padding of a conv or pooling layer, each as (height, width). The
    kernel is the span a dilated filter covers, d(f - 1) + 1, which is what the size rule takes."""
    stride = module.stride if module.stride is not None else module.kernel_size
    rate = pair(getattr(module, "dilation", 1))
    span = tuple(d * (f - 1) + 1 for d, f in zip(rate, pair(module.kernel_size), strict=True))
    return span, pair(stride), pair(module.padding)


@dataclass(frozen=True)
class Field:
    """What one unit of a tensor sees: ``rf`` and ``jump`` in input pixels, and ``span``, the
    side the whole tensor sees (kept when a map is flattened, for the layer that reads it all)."""

    rf: float
    jump: float
    span: float


def _tensors(value) -> Iterator[torch.Tensor]:
    """The tensors in an op's arguments or results, looking into lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _arg(args: tuple, kwargs: dict, index: int, name: str, default):
    """An op's argument given by position or by name."""
    return args[index] if len(args) > index else kwargs.get(name, default)


def _side(t: torch.Tensor) -> int:
    return max(t.shape[-2:])


class FieldTracker(TorchFunctionMode):
    """Inside ``with FieldTracker(model) as fields:``, tensors computed from the one given to
    ``start`` carry a Field, read back with ``fields.get(tensor)`` (None where undefined)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.fields: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.handles: list = []

    def __enter__(self) -> "FieldTracker":
        for module in self.model.modules():
            if isinstance(module, WINDOWED):
                # prepend: the field is set before any other hook reads it
                self.handles.append(module.register_forward_hook(self._windowed, prepend=True))
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        super().__exit__(*exc)

    def start(self, image: torch.Tensor) -> None:
        self._put(image, 1, 1)

    def get(self, t: torch.Tensor) -> Field | None:
        return self.fields.get(t)

    def _put(self, t: torch.Tensor, rf: float, jump: float, span: float | None = None) -> None:
        """A 4-D map's span follows from its side; anything else keeps the span it is given."""
        if t.dim() == 4:
            span = rf + (_side(t) - 1) * jump
        self.fields[t] = Field(rf, jump, rf if span is None else span)

    def _windowed(self, module: nn.Module, inputs: tuple, out) -> None:
        """The recurrence for a conv or pooling module; a 1x7 kernel counts by its longer side."""
        seen = self.get(inputs[0]) if inputs and isinstance(inputs[0], torch.Tensor) else None
        if seen is None or not isinstance(out, torch.Tensor):
            return
        (kh, kw), (sh, sw), _ = window(module)
        self._put(out, seen.rf + (max(kh, kw) - 1) * seen.jump, seen.jump * max(sh, sw))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        given = [(t, f) for t in _tensors((args, kwargs)) if (f := self.fields.get(t)) is not None]
        if given:
            self._follow(getattr(func, "__name__", ""), args, kwargs, given, result)
        return result

    def _follow(self, name: str, args, kwargs, given, result) -> None:
        """Carry the inputs' fields to ``result``: a few ops by name, the rest by shape."""
        rf = max(f.rf for _, f in given)
        span = max(f.span for _, f in given)
        first, seen = given[0]
        for out in _tensors(result):
            # the spacing of the inputs on the output's grid, not of a pooled vector broadcast
            # over it (a squeeze-and-excitation scale, ASPP's image pooling): those widen the
            # field, not the jump
            same = [f.jump for t, f in given if t.shape[-2:] == out.shape[-2:]]
            jump = min(same or [f.jump for _, f in given])
            if name == "linear":  # every output reads the whole input
                self._put(out, span, jump, span)
            elif out.dim() == 4 and first.dim() == 4 and name.startswith("adaptive_"):
                n, m = _side(first), _side(out)  # torch's windows: about n/m apart, n/m wide
                stride, kernel = n // m, math.ceil(n / m)
                self._put(out, seen.rf + (kernel - 1) * seen.jump, seen.jump * stride)
            elif out.dim() == 4 and first.dim() == 4 and name == "conv_transpose2d":
                kernel, stride = args[1].shape[-1], max(pair(_arg(args, kwargs, 3, "stride", 1)))
                taps = math.ceil(kernel / stride)  # input units that reach one output unit
                self._put(out, seen.rf + (taps - 1) * seen.jump, seen.jump / stride)
            elif out.dim() == 4 and first.dim() == 4 and name == "interpolate":
                mode = _arg(args, kwargs, 3, "mode", "nearest")
                grown = 0 if mode == "nearest" else seen.jump  # bilinear mixes two neighbours
                self._put(out, seen.rf + grown, seen.jump * _side(first) / _side(out))
            elif out.dim() == 4:  # add, concat, ReLU, batch norm, padding ...
                self._put(out, rf, jump)
            elif any(out.numel() == t.numel() for t, _ in given):  # flatten, view, elementwise
                self._put(out, rf, jump, span)
            # anything else (indexing, top-k, box decoding) has no field
