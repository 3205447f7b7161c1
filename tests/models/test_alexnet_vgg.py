"""AlexNet and VGG: parameter counts from the papers and torchvision, shapes, small inputs.

Counting happens on the meta device (no memory, no initialisation), so the 130M-parameter VGGs
cost nothing; forward passes run at 32x32 only.
"""

import pytest
import torch
import torchvision

from cnnlab.errors import UserError
from cnnlab.models import get_model
from cnnlab.models.vgg import CONFIGS

# At 224x224x3 and 1,000 classes; None: no torchvision twin (architecture differs).
IMAGENET_PARAMS = {
    "alexnet": (61_100_840, "alexnet"),
    "alexnet_2012": (62_378_344, None),
    "vgg11": (132_863_336, "vgg11"),
    "vgg11_lrn": (132_863_336, None),  # LRN has no parameters
    "vgg13": (133_047_848, "vgg13"),
    "vgg16_c": (133_638_952, None),
    "vgg16": (138_357_544, "vgg16"),
    "vgg19": (143_667_240, "vgg19"),
    "vgg11_bn": (132_868_840, "vgg11_bn"),
    "vgg13_bn": (133_053_736, "vgg13_bn"),
    "vgg16_bn": (138_365_992, "vgg16_bn"),
    "vgg19_bn": (143_678_248, "vgg19_bn"),
}
NAMES = sorted(IMAGENET_PARAMS)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_imagenet_parameter_counts(name):
    expected, twin = IMAGENET_PARAMS[name]
    with torch.device("meta"):
        ours = get_model(name, num_classes=1000, in_channels=3)
        assert n_params(ours) == expected
        if twin is not None:
            reference = getattr(torchvision.models, twin)(weights=None)
            assert n_params(ours) == n_params(reference)
            shapes = {k: v.shape for k, v in ours.state_dict().items()}
            assert shapes == {k: v.shape for k, v in reference.state_dict().items()}


def test_alexnet_2012_first_layer_is_the_papers():
    model = get_model("alexnet_2012")
    conv1 = model.features[0]
    assert tuple(conv1.weight.shape) == (96, 3, 11, 11)  # 11x11x3x96
    assert n_params(conv1) == 34_944  # 11*11*3*96 weights + 96 biases
    with torch.no_grad():
        assert conv1(torch.zeros(1, 3, 224, 224)).shape == (1, 96, 55, 55)  # (224-11+4)//4+1
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in model.features) == 2


def test_vgg_table_has_the_papers_weight_layers():
    convs = {col: sum(e not in ("M", "LRN") for e in cfg) for col, cfg in CONFIGS.items()}
    assert {col: n + 3 for col, n in convs.items()} == {
        "A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19
    }  # fmt: skip
    assert all(cfg.count("M") == 5 for cfg in CONFIGS.values())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("in_channels", [1, 3])
def test_forward_backward_small_input(name, in_channels):
    model = get_model(name, num_classes=10, in_channels=in_channels, small_input=True)
    out = model(torch.randn(2, in_channels, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", ["alexnet", "alexnet_2012"])
def test_alexnet_refuses_small_images_naming_the_layer_and_formula(name):
    model = get_model(name, num_classes=10)
    with pytest.raises(UserError, match=r"features\.\d+ .*\(N - F \+ 2P\)/S \+ 1.*small_input"):
        model(torch.zeros(1, 3, 32, 32))


def test_alexnet_takes_its_smallest_image():
    model = get_model("alexnet", num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 63, 63)).shape == (1, 10)
    with pytest.raises(UserError, match="62x62 image"):
        model(torch.zeros(1, 3, 62, 62))


def test_vgg_norm_picks_the_batch_norm_and_is_refused_without_one():
    from cnnlab.nn import BatchNorm2d

    model = get_model("vgg11_bn", norm="textbook", small_input=True)
    assert any(isinstance(m, BatchNorm2d) for m in model.features)
    with pytest.raises(UserError, match="vgg16_bn"):
        get_model("vgg16", norm="torch")
    with pytest.raises(UserError, match="torch, textbook"):
        get_model("vgg16_bn", norm="foo")


def test_lrn_is_the_papers_formula():
    """Krizhevsky et al.: b_i = a_i / (k + alpha * sum_{j=i-n/2}^{i+n/2} a_j^2)^beta, with the sum
    over the n=5 maps around i that exist, alpha=1e-4 (not torch's alpha / n), k=2, beta=0.75."""
    from cnnlab.models.alexnet import lrn

    a = torch.randn(2, 7, 4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = a * 10  # large activations, so that the constant matters
    expected = torch.empty_like(a)
    for i in range(a.shape[1]):
        window = a[:, max(0, i - 2) : i + 3]
        expected[:, i] = a[:, i] / (2.0 + 1e-4 * (window**2).sum(1)) ** 0.75
    torch.testing.assert_close(lrn()(a), expected, rtol=1e-12, atol=1e-12)
    weaker = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)  # alpha / 5 applied
    assert not torch.allclose(weaker, expected, rtol=1e-3)
    for name in ("alexnet_2012", "vgg11_lrn"):
        features = get_model(name, small_input=True).features  # the same LRN, small and fast
        norms = [m for m in features if isinstance(m, torch.nn.LocalResponseNorm)]
        assert norms and all((m.size, m.alpha, m.k) == (5, 5e-4, 2.0) for m in norms)


@pytest.mark.slow  # two 224-layout AlexNets: ~1.3 s
def test_alexnet_2012_two_towers_have_the_papers_parameter_count():
    """groups=2: conv2, conv4 and conv5 read only their own GPU's half of the maps."""
    net = get_model("alexnet_2012", groups=2)
    assert sum(p.numel() for p in net.parameters()) == 60_965_224
    assert sum(p.numel() for p in get_model("alexnet_2012").parameters()) == 62_378_344
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert convs[1].weight.shape == (256, 48, 5, 5)
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
    with pytest.raises(UserError, match="model.groups=3"):
        get_model("alexnet_2012", groups=3)


@pytest.mark.slow  # ~1.5 s
def test_alexnet_2012_paper_initialisation():
    torch.manual_seed(0)
    net = get_model("alexnet_2012", init="paper")
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    biases = [float(layer.bias.unique()) for layer in convs + linears]
    assert biases == [0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]  # conv1-5, fc6, fc7, fc8
    for layer in convs + linears:
        assert abs(float(layer.weight.mean())) < 1e-3
        assert float(layer.weight.std()) == pytest.approx(0.01, rel=0.05)
    with pytest.raises(UserError, match="model.init='xavier'"):
        get_model("alexnet_2012", init="xavier")
