"""DeepLab v1 to v3+: dilated backbones, output sizes, parameter counts, the configs."""

import pytest
import torch
import torch.nn.functional as F
import torchvision

from cnnlab.errors import UserError
from cnnlab.factory import build
from cnnlab.models import deeplab
from cnnlab.models.aspp import ASPP, PyramidScores
from cnnlab.models.resnet import resnet18, resnet50
from cnnlab.models.trunk import StageTaps, set_output_stride, tap_strides, trunk_of
from cnnlab.models.vgg import vgg11, vgg16

BUILDERS = ["deeplab_v1", "deeplab_v2", "deeplab_v3", "deeplab_v3plus"]
BACKBONES = {  # small classifiers: the heads never use them
    "resnet18": lambda: resnet18(num_classes=10),
    "vgg11": lambda: vgg11(num_classes=10, small_input=True),
}


def trainable(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def strides_of(net) -> list[int]:
    trunk = trunk_of(net)
    return tap_strides(StageTaps(trunk.body, [s[-1] for s in trunk.stages]))


@pytest.mark.parametrize("output_stride", [pytest.param(16, marks=pytest.mark.slow), 8])
def test_a_dilated_resnet_equals_torchvisions(output_stride):
    torch.manual_seed(0)
    ours = resnet50(num_classes=10).eval()
    dilated = [False, output_stride == 8, True]
    theirs = torchvision.models.resnet50(num_classes=10, replace_stride_with_dilation=dilated)
    theirs.load_state_dict(ours.state_dict())
    ours.dilate(output_stride)
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs.eval()(x), atol=1e-5)


@pytest.mark.parametrize("output_stride", [32, 16, 8])
def test_resnets_and_vggs_keep_the_asked_output_stride(output_stride):
    for net in (resnet18(num_classes=10), vgg11(num_classes=10, small_input=True)):
        set_output_stride(net, output_stride)
        assert strides_of(net)[-1] == output_stride


def test_vgg_at_stride_8_is_deeplabs_pool4_pool5_and_conv5():
    net = vgg16(num_classes=10, small_input=True)
    net.dilate(8)
    pools = [m for m in net.features if isinstance(m, torch.nn.MaxPool2d)]
    assert [p.stride for p in pools] == [2, 2, 2, 1, 1]
    assert [p.kernel_size for p in pools[3:]] == [3, 3]
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.dilation for c in convs[-3:]] == [(2, 2)] * 3  # conv5_1 to conv5_3
    assert all(c.dilation == (1, 1) for c in convs[:-3])


def test_a_backbone_that_cannot_be_dilated_is_refused():
    from cnnlab.models.googlenet import googlenet

    with pytest.raises(UserError, match="cannot be dilated"):
        set_output_stride(googlenet(num_classes=10), 16)
    with pytest.raises(UserError, match="32, 16 or 8"):
        resnet18().dilate(4)


def test_deeplab_v1_is_large_fov_with_the_papers_20_5m_parameters():
    with torch.device("meta"):  # shapes only
        net = deeplab.deeplab_v1(vgg16(), num_classes=21)
    assert trainable(net) == 20_505_429
    assert net.head.fc6.dilation == (12, 12) and net.head.fc6.out_channels == 1024
    assert net.head.fc7.kernel_size == (1, 1) and net.head.fc7.out_channels == 1024


@pytest.mark.parametrize("name", BUILDERS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_deeplab_gives_the_input_size_back(name, backbone):
    net = getattr(deeplab, name)(BACKBONES[backbone](), num_classes=3).eval()
    assert net.task == "segmentation"
    with torch.no_grad():
        assert net(torch.randn(2, 3, 97, 131)).shape == (2, 3, 97, 131)


@pytest.mark.parametrize(  # v3 and v2 share their parts with v3+ and v1: slow tier
    "name",
    [
        "deeplab_v1",
        pytest.param("deeplab_v2", marks=pytest.mark.slow),
        pytest.param("deeplab_v3", marks=pytest.mark.slow),
        "deeplab_v3plus",
    ],
)
def test_backward_reaches_the_trunk_and_the_head(name):
    net = getattr(deeplab, name)(resnet18(num_classes=10), num_classes=3)
    out = net(torch.randn(2, 3, 33, 41))
    F.cross_entropy(out, torch.randint(0, 3, (2, 33, 41))).backward()
    assert net.features.body.conv1.weight.grad is not None
    assert all(p.grad is not None for p in net.head.parameters() if p.requires_grad)


def test_v2_sums_one_score_map_per_rate():
    pyramid = PyramidScores(8, 3, rates=(1, 2))
    x = torch.randn(1, 8, 9, 9)
    assert torch.allclose(pyramid(x), pyramid.branches[0](x) + pyramid.branches[1](x))
    assert [b.dilation for b in pyramid.branches] == [(1, 1), (2, 2)]


def test_v3_aspp_concatenates_five_branches_with_batch_norm():
    aspp = ASPP(16, rates=(2, 4, 6), channels=8)
    assert len(aspp.branches) == 5  # 1x1, three dilated 3x3, image pooling
    assert aspp.project[0][0].in_channels == 40
    assert aspp(torch.randn(1, 16, 7, 9)).shape == (1, 8, 7, 9)  # one picture trains too


def test_v3plus_joins_the_stride_4_map():
    net = deeplab.deeplab_v3plus(resnet18(num_classes=10), num_classes=3)
    assert net.features.taps == ["layer1", "layer4"]
    assert net.head.reduce[0].in_channels == 64


@pytest.mark.parametrize("name", BUILDERS)
def test_configs_build(make_cfg, name):
    cfg = make_cfg([f"model={name}", "model/backbone=resnet18"])
    assert build.model_task(cfg.model._target_) == "segmentation"
    net = build.build_network(cfg.model, num_classes=4, in_channels=3, image_size=64).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 65, 63)).shape == (1, 4, 65, 63)
