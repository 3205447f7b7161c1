"""Box regression targets, as R-CNN defines them (Girshick et al. 2014, appendix C).

A proposal P (centre px, py, size pw, ph) is moved onto a box G by four numbers:

    dx = (gx - px) / pw      dy = (gy - py) / ph      dw = log(gw / pw)      dh = log(gh / ph)

so the centre moves by a share of the proposal's size and the size scales, whatever the
proposal's size and place. ``encode`` gives these targets, ``decode`` applies predicted ones.
Each is multiplied by a weight (``WEIGHTS``, torchvision's 10, 10, 5, 5) so that the four
targets have about unit spread, which the paper does by dividing by their standard deviation.
"""

import math

import torch

WEIGHTS = (10.0, 10.0, 5.0, 5.0)
MAX_LOG_SCALE = math.log(1000.0 / 16)  # a decoded box grows at most this much (e^4.1 = 62x)


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode(proposals: torch.Tensor, boxes: torch.Tensor, weights=WEIGHTS) -> torch.Tensor:
    """Targets (K, 4) that move each proposal (K, 4) x1, y1, x2, y2 onto its box (K, 4)."""
    px, py, pw, ph = _centre_size(proposals)
    gx, gy, gw, gh = _centre_size(boxes)
    wx, wy, ww, wh = weights
    return torch.stack(
        (
            wx * (gx - px) / pw,
            wy * (gy - py) / ph,
            ww * torch.log(gw / pw),
            wh * torch.log(gh / ph),
        ),
        dim=1,
    )


def decode(proposals: torch.Tensor, deltas: torch.Tensor, weights=WEIGHTS) -> torch.Tensor:
    """The boxes (K, ..., 4) that deltas (K, ..., 4) make of the proposals (K, 4)."""
    px, py, pw, ph = (v.view(-1, *([1] * (deltas.dim() - 2))) for v in _centre_size(proposals))
    wx, wy, ww, wh = weights
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw = (deltas[..., 2] / ww).clamp(max=MAX_LOG_SCALE)
    dh = (deltas[..., 3] / wh).clamp(max=MAX_LOG_SCALE)
    cx, cy = px + dx * pw, py + dy * ph
    w, h = pw * torch.exp(dw), ph * torch.exp(dh)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)
