"""Batch normalisation layers (Ioffe & Szegedy 2015) that can stand in for torch's.

Training: each channel is normalised with the mini-batch mean and variance (the hand-written
``BatchNormFunction``), and running averages of both are kept. Evaluation: the running
averages are used, so an output depends on its own input only. Constructor arguments,
parameter names (``weight`` = gamma, ``bias`` = beta) and buffers (``running_mean``,
``running_var``, ``num_batches_tracked``) are torch's, so state dicts move either way.
"""

import torch
from torch import nn

from cnnlab.nn.batchnorm_function import BatchNormFunction, per_channel


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Normalise ``x`` (N, C, *) per channel, as torch.nn.functional.batch_norm does.

    ``training``: batch statistics, and the running ones (if given) move toward them by
    ``momentum``; the running variance takes the unbiased batch variance (times m/(m-1)),
    as in the paper's inference step. Otherwise the running statistics normalise.
    """
    channels = x.shape[1]
    dtype = torch.promote_types(x.dtype, torch.float32)  # half-precision input: fp32 statistics
    gamma = x.new_ones(channels, dtype=dtype) if weight is None else weight.to(dtype)
    beta = x.new_zeros(channels, dtype=dtype) if bias is None else bias.to(dtype)
    if not training:
        inv_std = torch.rsqrt(running_var.to(dtype) + eps)  # (C,)
        x_hat = (x.to(dtype) - per_channel(running_mean.to(dtype), x)) * per_channel(inv_std, x)
        return (per_channel(gamma, x) * x_hat + per_channel(beta, x)).to(x.dtype)
    m = x.numel() // channels  # values per channel
    if m < 2:
        raise ValueError(f"batch norm needs more than 1 value per channel when training, got {m}")
    y, batch_mean, batch_var = BatchNormFunction.apply(x.to(dtype), gamma, beta, eps)
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            unbiased = batch_var * m / (m - 1)  # (C,)
            running_mean.mul_(1 - momentum).add_(momentum * batch_mean.to(running_mean.dtype))
            running_var.mul_(1 - momentum).add_(momentum * unbiased.to(running_var.dtype))
    return y.to(x.dtype)


class BatchNormBase(nn.Module):
    """What BatchNorm1d and BatchNorm2d share; they differ only in the input shapes taken."""

    input_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        factory = {"device": device, "dtype": dtype}
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))  # gamma, (C,)
            self.bias = nn.Parameter(torch.zeros(num_features, **factory))  # beta, (C,)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in self.input_dims:
            dims = " or ".join(f"{d}D" for d in self.input_dims)
            raise ValueError(f"{type(self).__name__} expects {dims} input, got {x.dim()}D")
        factor = 0.0  # how far the running averages move toward this batch's statistics
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            # momentum=None: a plain (cumulative) average of every batch so far
            n = float(self.num_batches_tracked)
            factor = 1.0 / n if self.momentum is None else self.momentum
        # Batch statistics in training, and in eval too when no running ones are kept.
        use_batch = self.training or self.running_mean is None
        return batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(BatchNormBase):
    """Batch norm over (N, C) features or (N, C, L) sequences: statistics per channel C."""

    input_dims = (2, 3)


class BatchNorm2d(BatchNormBase):
    """Batch norm over (N, C, H, W) maps: statistics per channel over N, H and W (m = N*H*W)."""

    input_dims = (4,)
