"""Batch normalisation's training-mode forward and backward, from Ioffe & Szegedy (2015).

Each channel is normalised over its m values in the mini-batch (m = N for (N, C) input,
N*L for (N, C, L), N*H*W for (N, C, H, W)), then scaled by gamma and shifted by beta.
The backward pass is the paper's chain rule written out line by line, not autograd's. It gives
first derivatives only: a second derivative (``create_graph=True`` and backward again, as a
gradient penalty does) raises a RuntimeError rather than return wrong values, because the lines
below are not differentiated themselves; use torch.nn.BatchNorm2d for that.
"""

import torch
from torch.autograd.function import once_differentiable


def _stat_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Every dimension but the channels (dim 1): the m values each channel is averaged over."""
    return (0, *range(2, x.dim()))


def per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(C,) -> (1, C, 1, ...) so that it broadcasts against ``x``."""
    return v.reshape(1, -1, *([1] * (x.dim() - 2)))


class BatchNormFunction(torch.autograd.Function):
    """``y, mu_B, var_B = BatchNormFunction.apply(x, gamma, beta, eps)``.

    x: (N, C, *), gamma and beta: (C,). Returns the normalised output (shaped like x) and the
    batch mean and (biased) variance per channel, (C,) each, which are not differentiable:
    the module uses them only to update its running averages.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float):
        dims = _stat_dims(x)
        mu = x.mean(dims, keepdim=True)  # mu_B = 1/m sum_i x_i                    (1, C, 1, ..)
        var = ((x - mu) ** 2).mean(dims, keepdim=True)  # sigma_B^2 = 1/m sum_i (x_i - mu_B)^2
        x_hat = (x - mu) / torch.sqrt(var + eps)  # x^_i = (x_i - mu_B) / sqrt(sigma_B^2 + eps)
        y = per_channel(gamma, x) * x_hat + per_channel(beta, x)  # y_i = gamma x^_i + beta
        ctx.save_for_backward(x, gamma, mu, var)
        ctx.eps = eps
        batch_mean, batch_var = mu.reshape(-1).clone(), var.reshape(-1).clone()  # (C,) each
        ctx.mark_non_differentiable(batch_mean, batch_var)
        return y, batch_mean, batch_var

    @staticmethod
    @once_differentiable  # the hand-written lines below are not themselves differentiated
    def backward(ctx, dl_dy: torch.Tensor, _dl_dmean: torch.Tensor, _dl_dvar: torch.Tensor):
        x, gamma, mu, var = ctx.saved_tensors
        dims = _stat_dims(x)
        m = x.numel() // x.shape[1]  # values per channel
        xc = x - mu  # x_i - mu_B
        inv_std = 1.0 / torch.sqrt(var + ctx.eps)  # 1 / sqrt(sigma_B^2 + eps)

        # dl/dx^_i = dl/dy_i * gamma
        dl_dxhat = dl_dy * per_channel(gamma, x)
        # dl/dsigma_B^2 = sum_i dl/dx^_i * (x_i - mu_B) * -1/2 (sigma_B^2 + eps)^(-3/2)
        dl_dvar = (dl_dxhat * xc).sum(dims, keepdim=True) * -0.5 * (var + ctx.eps) ** -1.5
        # dl/dmu_B = sum_i dl/dx^_i * -1/sqrt(sigma_B^2 + eps)
        #            + dl/dsigma_B^2 * (sum_i -2 (x_i - mu_B)) / m
        # The second term is the path through sigma_B^2. It is zero (up to rounding), since
        # sum_i (x_i - mu_B) = 0, but it is the paper's formula, so it is kept. (The lecture's
        # slide labels this line dl/dsigma_B and leaves that term out.)
        via_xhat = (dl_dxhat * -inv_std).sum(dims, keepdim=True)
        via_var = dl_dvar * (-2.0 * xc).sum(dims, keepdim=True) / m
        dl_dmu = via_xhat + via_var
        # dl/dx_i = dl/dx^_i / sqrt(sigma_B^2 + eps) + dl/dsigma_B^2 * 2 (x_i - mu_B) / m
        #           + dl/dmu_B / m
        dl_dx = dl_dxhat * inv_std + dl_dvar * 2.0 * xc / m + dl_dmu / m
        dl_dgamma = dl_dbeta = None
        if ctx.needs_input_grad[1]:
            dl_dgamma = (dl_dy * xc * inv_std).sum(dims)  # dl/dgamma = sum_i dl/dy_i * x^_i
        if ctx.needs_input_grad[2]:
            dl_dbeta = dl_dy.sum(dims)  # dl/dbeta = sum_i dl/dy_i
        return dl_dx, dl_dgamma, dl_dbeta, None
