"""FCN-32s/16s/8s: bilinear start of the upsampling, output sizes, stages fused, gradients."""

import pytest
import torch
import torch.nn.functional as F

from cnnlab.factory import build
from cnnlab.models.resnet import resnet18
from cnnlab.models.segmentation import fcn8s, fcn16s, fcn32s
from cnnlab.models.upsampling import BilinearUpsample, fit_to
from cnnlab.models.vgg import vgg16

BUILDERS = {"fcn32s": fcn32s, "fcn16s": fcn16s, "fcn8s": fcn8s}


@pytest.mark.parametrize("factor", [2, 8, 32])
def test_upsampling_starts_as_bilinear_interpolation(factor):
    x = torch.randn(2, 3, 5, 7)
    up = BilinearUpsample(3, factor)
    expected = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    # with the edge repeated (what interpolation does at the border) the two agree everywhere
    padded = up(F.pad(x, (1, 1, 1, 1), mode="replicate"))[..., factor:-factor, factor:-factor]
    assert torch.allclose(padded, expected, atol=1e-5)
    inner = slice(factor, -factor)  # without padding: everywhere but the border
    assert torch.allclose(up(x)[..., inner, inner], expected[..., inner, inner], atol=1e-5)
    assert up.weight.requires_grad  # learned, not fixed


def test_full_upsampling_starts_bilinear_on_the_diagonal_and_mixes_classes_later():
    x = torch.randn(1, 3, 5, 7)
    full, depthwise = BilinearUpsample(3, 2, full=True), BilinearUpsample(3, 2)
    assert full.weight.shape == (3, 3, 4, 4) and depthwise.weight.shape == (3, 1, 4, 4)
    assert torch.allclose(full(x), depthwise(x), atol=1e-6)
    assert not full.weight[0, 1].any()  # class 1 does not feed class 0, yet


def test_a_fixed_upsampling_is_a_buffer_and_stays_bilinear_while_training():
    net = fcn8s(resnet18(num_classes=10), num_classes=3)
    assert "final_up.weight" not in dict(net.named_parameters())
    assert "final_up.weight" in net.state_dict()  # kept in checkpoints all the same
    before = net.final_up.weight.clone()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    out = net(torch.randn(2, 3, 32, 32))
    F.cross_entropy(out, torch.randint(0, 3, (2, 32, 32))).backward()
    optimizer.step()
    assert torch.equal(net.final_up.weight, before)
    assert not torch.equal(net.skip_ups[0].weight, BilinearUpsample(3, 2, full=True).weight)
    learned = fcn8s(resnet18(num_classes=10), num_classes=3, learn_final_upsampling=True)
    assert "final_up.weight" in dict(learned.named_parameters())


def test_fit_to_crops_and_pads():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert torch.equal(fit_to(x, 2, 3), x[..., :2, :3])
    padded = fit_to(x, 4, 5)
    assert padded.shape[-2:] == (4, 5) and torch.equal(padded[..., :3, :4], x)
    assert padded[0, 0, 3, 4] == x[0, 0, 2, 3]


@pytest.mark.parametrize("name", BUILDERS)
def test_output_is_the_input_size_and_backward_reaches_every_part(name):
    net = BUILDERS[name](resnet18(num_classes=10), num_classes=4).eval()
    assert net.task == "segmentation"
    for size in [(97, 131), (33, 40)]:
        with torch.no_grad():
            assert net(torch.randn(1, 3, *size)).shape == (1, 4, *size)
    out = net.train()(torch.randn(1, 3, 40, 40))
    F.cross_entropy(out, torch.randint(0, 4, (1, 40, 40))).backward()
    assert net.features.body.conv1.weight.grad is not None
    assert all(up.weight.grad is not None for up in net.skip_ups)
    assert all(c.weight.grad is not None for c in net.skip_scores)


def test_vgg16_fuses_pool4_and_pool3_scores():
    with torch.device("meta"):  # structure only (tests/models/test_fcn_paper.py runs one)
        net = fcn8s(vgg16(num_classes=10), num_classes=3)
    taps = net.features.taps
    pools = [n for n, m in net.features.body.named_children() if isinstance(m, torch.nn.MaxPool2d)]
    assert taps == pools[2:]  # pool3, pool4, pool5
    assert [up.factor for up in net.skip_ups] == [2, 2] and net.final_up.factor == 8
    assert [c.in_channels for c in net.skip_scores] == [256, 512]


def test_resnet_fuses_layer3_and_layer2_scores_starting_at_zero():
    net = fcn8s(resnet18(num_classes=10), num_classes=3)
    assert net.features.taps == ["layer2", "layer3", "layer4"]
    assert [c.in_channels for c in net.skip_scores] == [128, 256]
    for conv in net.skip_scores:  # a fresh FCN-8s predicts what its FCN-32s path does
        assert not conv.weight.any() and not conv.bias.any()


def test_trainable_layers_freezes_early_stages():
    net = fcn16s(resnet18(num_classes=10), num_classes=3, trainable_layers=2)
    body = net.features.body
    assert not any(p.requires_grad for p in body.layer1.parameters())
    assert all(p.requires_grad for p in body.layer4.parameters())


@pytest.mark.parametrize("name", BUILDERS)
def test_configs_build_with_the_data_sizes(make_cfg, name):
    cfg = make_cfg([f"model={name}"])
    assert build.model_task(cfg.model._target_) == "segmentation"
    net = build.build_network(cfg.model, num_classes=4, in_channels=3, image_size=64)
    net.eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 4, 64, 64)
