"""DeepLab's fully connected CRF (Chen et al., ICLR 2015 and TPAMI 2018) as post-processing.

The network's softmax gives each pixel i a unary energy -log P(x_i); every pair of pixels i, j
adds a Potts penalty (paid when their labels differ) weighted by

    k(i, j) = w1 exp(-|p_i - p_j|^2 / 2a^2 - |I_i - I_j|^2 / 2b^2)    appearance (bilateral)
            + w2 exp(-|p_i - p_j|^2 / 2g^2)                           smoothness (position)

with p a pixel's position (pixels) and I its RGB colour (0..255). Nearby pixels of similar
colour are pushed to take one label, so the blurry, blob-shaped scores of a CNN snap to the
picture's edges. The mean-field inference of Kraehenbuehl and Koltun (NIPS 2011) approximates
the posterior by independent per-pixel distributions Q, updated ``iterations`` times with
permutohedral-lattice filtering (linear in the number of pixels); ``pydensecrf2``'s C++ code
does that part (the optional extra ``cnnlab[crf]``).
"""

from dataclasses import dataclass, fields

import numpy as np
import torch

from cnnlab.errors import UserError

INSTALL_HINT = 'pip install "cnnlab[crf]" (or pip install pydensecrf2)'
# A probability of 0 costs -log(1e-5) = 11.5 rather than infinity: the pairwise terms can
# still outvote a pixel the network was sure of.
PROB_FLOOR = 1e-5


@dataclass(frozen=True)
class CRFSettings:
    """The CRF's kernels, in the formula of the module docstring (the config node ``crf``).

    ``bi_w`` = w1, ``bi_xy_std`` = a (pixels), ``bi_rgb_std`` = b (colour levels 0..255):
    the appearance kernel; ``pos_w`` = w2, ``pos_xy_std`` = g (pixels): the smoothness kernel;
    ``iterations``: mean-field updates.

    The defaults are DeepLab-LargeFOV's, as its authors cross-validated them on PASCAL VOC
    2012 val and released them with the model: the papers fix w2 = 3 and g = 3 and search
    w1, a and b on held-out val pictures, which gave w1 = 4, a = 121, b = 5 for LargeFOV;
    mean field runs 10 iterations (ICLR 2015 and TPAMI alike). The other DeepLab variants
    ended with other w1, a, b (the widths are for VOC's ~500x375 pictures), so a new network,
    data set or picture size deserves its own small search.
    """

    iterations: int = 10
    pos_w: float = 3.0
    pos_xy_std: float = 3.0
    bi_w: float = 4.0
    bi_xy_std: float = 121.0
    bi_rgb_std: float = 5.0

    def __post_init__(self) -> None:
        its = self.iterations
        if isinstance(its, bool) or not isinstance(its, int) or its < 0:
            raise UserError(f"crf.iterations={its!r} must be a whole number of at least 0.")
        for name in ("pos_w", "bi_w"):
            if not _number(getattr(self, name)) or getattr(self, name) < 0:
                raise UserError(f"crf.{name}={getattr(self, name)!r} must be a weight >= 0.")
        for name in ("pos_xy_std", "bi_xy_std", "bi_rgb_std"):
            if not _number(getattr(self, name)) or getattr(self, name) <= 0:
                raise UserError(f"crf.{name}={getattr(self, name)!r} must be a width > 0.")

    @classmethod
    def from_keys(cls, keys: dict | None) -> "CRFSettings":
        """Settings from the ``crf`` node's keys (missing ones keep their defaults), refusing
        keys that are no setting."""
        keys = dict(keys or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(keys) - set(known))
        if unknown:
            raise UserError(
                f"{', '.join(f'crf.{k}' for k in unknown)} is no CRF setting; the settings are "
                f"{', '.join(f'crf.{k}' for k in known)}."
            )
        return cls(**keys)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def densecrf_module():
    """pydensecrf2's ``densecrf`` module, or a UserError that names the extra to install (a run
    that will need it calls this first, to stop before any work)."""
    try:
        import pydensecrf.densecrf as densecrf
    except ImportError as err:
        raise UserError(
            "The fully connected CRF (model.crf=true, predict.crf=true) needs pydensecrf2, which "
            f"is not installed. Install the extra: {INSTALL_HINT}, or leave the CRF off."
        ) from err
    return densecrf


def dense_crf(image: torch.Tensor, probs: torch.Tensor, settings: CRFSettings) -> torch.Tensor:
    """Refine one picture's class probabilities with the fully connected CRF.

    ``image``: uint8 RGB (3, H, W), the picture the scores are for, at their size; ``probs``:
    float (C, H, W), a softmax over the C classes. Returns float32 (C, H, W) on ``probs``'s
    device: the mean-field posterior Q, a distribution over the classes at every pixel. The
    unary is -log(probs), probabilities floored at ``PROB_FLOOR``.
    """
    if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(
            f"dense_crf takes a uint8 RGB image (3, H, W); got {image.dtype} {tuple(image.shape)}."
        )
    if probs.dim() != 3 or probs.shape[1:] != image.shape[1:]:
        raise ValueError(
            f"Probabilities (C, H, W) {tuple(probs.shape)} do not fit the image "
            f"{tuple(image.shape)}: resize the scores to the picture first."
        )
    densecrf = densecrf_module()
    classes, height, width = probs.shape
    p = probs.detach().float().cpu().clamp_min(PROB_FLOOR)
    unary = np.ascontiguousarray(-p.log().reshape(classes, -1).numpy())  # (C, H*W) float32
    rgb = np.ascontiguousarray(image.detach().cpu().permute(1, 2, 0).numpy())  # (H, W, 3)

    crf = densecrf.DenseCRF2D(width, height, classes)
    crf.setUnaryEnergy(unary)
    # a scalar compat is the Potts model: w paid for each differing pair, weighted by the kernel
    crf.addPairwiseGaussian(sxy=settings.pos_xy_std, compat=settings.pos_w)
    crf.addPairwiseBilateral(
        sxy=settings.bi_xy_std, srgb=settings.bi_rgb_std, rgbim=rgb, compat=settings.bi_w
    )
    q = np.asarray(crf.inference(settings.iterations), dtype=np.float32)  # (C, H*W)
    return torch.from_numpy(q.reshape(classes, height, width)).to(probs.device)
