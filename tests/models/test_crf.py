"""DeepLab's fully connected CRF (cnnlab.models.crf): a noisy unary that the picture's colour
edge corrects, valid distributions out, the settings' checks, and the missing extra named."""

import builtins

import pytest
import torch

from cnnlab.errors import UserError
from cnnlab.models.crf import CRFSettings, dense_crf

HEIGHT, WIDTH = 32, 48


def two_halves(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 picture (3, 32, 48): left half dark red, right half blue, with a little noise;
    and the true class of each pixel (0 left, 1 right)."""
    gen = torch.Generator().manual_seed(seed)
    picture = torch.empty(3, HEIGHT, WIDTH)
    picture[:, :, : WIDTH // 2] = torch.tensor([180.0, 40, 40]).view(3, 1, 1)
    picture[:, :, WIDTH // 2 :] = torch.tensor([40.0, 60, 190]).view(3, 1, 1)
    picture += 4 * torch.randn(3, HEIGHT, WIDTH, generator=gen)  # noise well under the edge
    truth = torch.zeros(HEIGHT, WIDTH, dtype=torch.int64)
    truth[:, WIDTH // 2 :] = 1
    return picture.clamp(0, 255).round().to(torch.uint8), truth


def noisy_probs(truth: torch.Tensor, wrong: float = 0.3, seed: int = 1) -> torch.Tensor:
    """2-class probabilities (2, H, W): 0.6 on the true class, except at a random ``wrong``
    share of the pixels, where 0.6 goes to the other class."""
    gen = torch.Generator().manual_seed(seed)
    flipped = torch.rand(truth.shape, generator=gen) < wrong
    said = torch.where(flipped, 1 - truth, truth)
    probs = torch.full((2, *truth.shape), 0.4)
    probs.scatter_(0, said.unsqueeze(0), 0.6)
    return probs


def test_the_colour_edge_corrects_a_noisy_unary():
    picture, truth = two_halves()
    probs = noisy_probs(truth)
    before = (probs.argmax(0) == truth).float().mean().item()
    assert 0.6 < before < 0.8  # the unary alone is right on about 70% of the pixels

    refined = dense_crf(picture, probs, CRFSettings())
    assert refined.shape == (2, HEIGHT, WIDTH) and refined.dtype == torch.float32
    assert (refined.argmax(0) == truth).float().mean().item() >= 0.98


def test_uniform_probabilities_stay_a_distribution():
    picture, _ = two_halves()
    refined = dense_crf(picture, torch.full((3, HEIGHT, WIDTH), 1 / 3), CRFSettings())
    assert (refined >= 0).all()
    assert torch.allclose(refined.sum(0), torch.ones(HEIGHT, WIDTH), atol=1e-5)


def test_no_iterations_give_back_the_floored_probabilities():
    picture, truth = two_halves()
    probs = noisy_probs(truth).double()  # any float dtype in, float32 out
    refined = dense_crf(picture, probs, CRFSettings(iterations=0))
    assert refined.dtype == torch.float32
    assert torch.allclose(refined, probs.float(), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_result_stays_on_the_device_of_the_probabilities():
    picture, truth = two_halves()
    probs = noisy_probs(truth).cuda()
    assert dense_crf(picture, probs, CRFSettings(iterations=2)).device == probs.device


def test_shapes_that_do_not_fit_are_refused():
    picture, truth = two_halves()
    with pytest.raises(ValueError, match="resize the scores"):
        dense_crf(picture, noisy_probs(truth)[:, :-1], CRFSettings())
    with pytest.raises(ValueError, match="uint8 RGB"):
        dense_crf(picture.float(), noisy_probs(truth), CRFSettings())


def test_defaults_are_deeplab_largefov_and_bad_settings_are_named():
    assert CRFSettings() == CRFSettings(
        iterations=10, pos_w=3, pos_xy_std=3, bi_w=4, bi_xy_std=121, bi_rgb_std=5
    )
    assert CRFSettings.from_keys({"bi_w": 5}) == CRFSettings(bi_w=5)
    assert CRFSettings.from_keys(None) == CRFSettings()
    with pytest.raises(UserError, match="crf.bi_xy is no CRF setting.*crf.bi_xy_std"):
        CRFSettings.from_keys({"bi_xy": 50})
    with pytest.raises(UserError, match="crf.iterations=2.5"):
        CRFSettings(iterations=2.5)
    with pytest.raises(UserError, match="crf.bi_rgb_std=0 must be a width > 0"):
        CRFSettings(bi_rgb_std=0)
    with pytest.raises(UserError, match="crf.pos_w=-1 must be a weight"):
        CRFSettings(pos_w=-1)


def test_a_missing_extra_is_named(monkeypatch):
    real_import = builtins.__import__

    def no_pydensecrf(name, *args, **kwargs):
        if name.startswith("pydensecrf"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydensecrf)
    picture, truth = two_halves()
    with pytest.raises(UserError, match=r'pip install "cnnlab\[crf\]"'):
        dense_crf(picture, noisy_probs(truth), CRFSettings())
