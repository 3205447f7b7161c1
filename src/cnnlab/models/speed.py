"""Speed switches for a built network: channels-last memory format and torch.compile.

Both leave the network's state dict as it was: the same key names (no ``_orig_mod.``, since
``nn.Module.compile`` compiles in place instead of wrapping) and the same values, so a
checkpoint loads the same way whether it was written with the switches on or off.
"""

import torch
from torch import nn

# torch.compile keyword arguments for model.compile=true; tests swap in a cheaper backend.
# Static shapes: each batch shape a run meets (the full batch, the epoch's last smaller one, the
# evaluation batches) compiles once into kernels for that shape, instead of torch's default of
# recompiling for symbolic sizes when a second shape comes, which ran slower on the GPU.
COMPILE_OPTIONS: dict = {"dynamic": False}


def _to_channels_last(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: every 4-D tensor argument (B, C, H, W) in channels-last order."""
    return tuple(
        a.contiguous(memory_format=torch.channels_last)
        if torch.is_tensor(a) and a.dim() == 4
        else a
        for a in args
    )


def use_channels_last(net: nn.Module) -> nn.Module:
    """Store the 4-D weights channels-last and convert each input batch on the way in.

    Convolutions on tensor cores (cuDNN, mixed precision) run fastest on NHWC data; the
    network's own layers pass the format along. The input is converted by a forward pre-hook,
    so neither the LightningModule nor the data pipeline needs to know. Inputs that are not a
    4-D tensor (a detector's list of images) pass unchanged.
    """
    net.to(memory_format=torch.channels_last)
    net.register_forward_pre_hook(_to_channels_last)
    return net


def compile_network(net: nn.Module, **options) -> nn.Module:
    """Compile ``net``'s forward in place with torch.compile (``options`` go to it).

    The first batch of each shape pays the compile time (tens of seconds on a CPU, about a
    minute for a ResNet-50 on a GPU); later batches run the generated kernels.
    """
    net.compile(**{**COMPILE_OPTIONS, **options})
    return net


def apply_speed_switches(net: nn.Module, channels_last: bool = False, compile: bool = False):
    """The switches ``model.channels_last`` and ``model.compile``, applied to a built network."""
    if channels_last:
        use_channels_last(net)
    if compile:
        compile_network(net)
    return net
