"""``model.layers=textbook``: a network's convolutions, pools and batch norms made cnnlab's own.

Every ``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.AvgPool2d`` and ``nn.BatchNorm2d`` of a built
network is replaced by its ``cnnlab.nn`` twin (im2col convolution, sliding-window pooling,
batch norm with the hand-written backward pass) that takes over the very same parameter and
buffer tensors, so the state dict, the weights loaded before the swap and the outputs stay
the same (tests hold them to torch's). The rest (ReLU, dropout, LRN, the global average pool,
the linear layers) is torch's as before. The network trains as it did, only slower: the
textbook code has no fused kernels (docs/benchmarks.md has the factor).
"""

from collections.abc import Callable

from torch import nn

import cnnlab.nn
from cnnlab.errors import UserError

LAYERS = ("torch", "textbook")


def _conv(layer: nn.Conv2d) -> nn.Module | str:
    if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        return f"padding={layer.padding!r}, padding_mode={layer.padding_mode!r}"
    twin = cnnlab.nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        layer.groups,
        bias=layer.bias is not None,
        device="meta",  # no memory: the torch layer's own tensors are put in below
    )
    twin.weight, twin.bias = layer.weight, layer.bias
    return twin


def _max_pool(layer: nn.MaxPool2d) -> nn.Module | str:
    if layer.dilation not in (1, (1, 1)) or layer.return_indices:
        return f"dilation={layer.dilation}, return_indices={layer.return_indices}"
    return cnnlab.nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode)


def _avg_pool(layer: nn.AvgPool2d) -> nn.Module | str:
    if layer.ceil_mode or not layer.count_include_pad or layer.divisor_override:
        return (
            f"ceil_mode={layer.ceil_mode}, count_include_pad={layer.count_include_pad}, "
            f"divisor_override={layer.divisor_override}"
        )
    return cnnlab.nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding)


def _batch_norm(layer: nn.BatchNorm2d) -> nn.Module:
    twin = cnnlab.nn.BatchNorm2d(
        layer.num_features,
        layer.eps,
        layer.momentum,
        layer.affine,
        layer.track_running_stats,
        device="meta",
    )
    twin.weight, twin.bias = layer.weight, layer.bias
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(twin, name, getattr(layer, name))  # the same buffers, registered as buffers
    twin.train(layer.training)
    return twin


# exact types: a subclass of torch's layer may do more than its forward shows
_TWINS: dict[type, Callable[[nn.Module], nn.Module | str]] = {
    nn.Conv2d: _conv,
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _avg_pool,
    nn.BatchNorm2d: _batch_norm,
}


def use_textbook_layers(net: nn.Module) -> nn.Module:
    """Swap ``net``'s torch convolutions, pools and batch norms for cnnlab.nn's, in place.

    A layer with a setting the textbook code does not implement (a dilated pool, a pool that
    leaves padding out of its average) is refused, naming it; nothing is swapped then.
    """
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    for name, layer in net.named_modules():
        make = _TWINS.get(type(layer))
        if make is None:
            continue
        twin = make(layer)
        if isinstance(twin, str):
            raise UserError(
                f"model.layers=textbook: layer {name} ({type(layer).__name__}) has {twin}, "
                "which cnnlab's textbook layers do not implement. Keep model.layers=torch for "
                "this model."
            )
        parent, _, attr = name.rpartition(".")
        swaps.append((net.get_submodule(parent), attr, twin))
    for parent, attr, twin in swaps:
        setattr(parent, attr, twin)
    return net


def choose_layers(net: nn.Module, layers: str) -> nn.Module:
    """``net`` with the layers ``model.layers`` names: torch's (as built) or the textbook's."""
    if layers not in LAYERS:
        raise UserError(
            f"model.layers={layers!r} is not a layer set cnnlab knows; choose torch (torch's "
            "layers, fast) or textbook (cnnlab.nn's convolution, pooling and batch norm)."
        )
    return use_textbook_layers(net) if layers == "textbook" else net
