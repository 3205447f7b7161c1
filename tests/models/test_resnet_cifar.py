"""The CIFAR ResNets of He et al. (2016), section 4.2."""

import json

import pytest
import torch

from cnnlab.cli.train import train
from cnnlab.models.resnet_cifar import CifarResNet, PaddedShortcut

# The paper's Table 6 gives 0.27M, 0.46M, 0.66M, 0.85M and 1.7M (three channels, ten classes).
PAPER_PARAMS = {3: 0.27e6, 5: 0.46e6, 7: 0.66e6, 9: 0.85e6, 18: 1.7e6}


@pytest.mark.parametrize("n", sorted(PAPER_PARAMS))
def test_parameter_counts_match_the_paper(n):
    count = sum(p.numel() for p in CifarResNet(n).parameters())
    assert count == pytest.approx(PAPER_PARAMS[n], rel=0.02)


def test_depth_is_6n_plus_2_weighted_layers():
    model = CifarResNet(3)
    weighted = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len(weighted) == 20


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
    x = torch.randn(2, 16, 8, 8)
    y = PaddedShortcut(16)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()


@pytest.mark.slow
def test_resnet20_learns_the_digits(make_cfg, tmp_path):
    overrides = ["model=resnet20", "trainer.max_epochs=3", "trainer.enable_model_summary=false"]
    cfg = make_cfg(overrides)  # the default optimizer: Adam 2e-3, cosine
    metrics = train(cfg)
    assert metrics["test/acc"] >= 0.95
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test/acc"] >= 0.95
