"""model.layers=textbook: cnnlab.nn's convolution, pooling and batch norm in real networks.

The swapped network keeps the torch-built one's tensors, so with the same weights it gives the
same outputs and gradients; the layers really are the textbook ones; settings the textbook code
lacks are refused; and the config key reaches the network.
"""

import copy

import pytest
import torch
from torch import nn

import cnnlab.nn
from cnnlab.errors import UserError
from cnnlab.factory.build import build_network
from cnnlab.models import get_model
from cnnlab.models.textbook import use_textbook_layers

SLOW = pytest.mark.slow  # about 1 s each in float64 on 2 cores
CASES = [  # name, builder arguments, input (channels, side)
    pytest.param("lenet", {}, (1, 32), id="lenet"),
    pytest.param("resnet20", {}, (3, 32), id="resnet20"),
    pytest.param("alexnet", {"small_input": True}, (3, 32), id="alexnet", marks=SLOW),
    pytest.param(
        "alexnet_2012", {"groups": 2, "small_input": True}, (3, 32), id="alexnet_2012", marks=SLOW
    ),
    pytest.param("vgg11_bn", {"small_input": True}, (3, 32), id="vgg11_bn", marks=SLOW),
    pytest.param("resnet18", {}, (3, 32), id="resnet18", marks=SLOW),
    pytest.param("googlenet", {"small_input": True}, (3, 32), id="googlenet", marks=SLOW),
]
TORCH_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d)


@pytest.mark.parametrize(("name", "kwargs", "shape"), CASES)
def test_textbook_network_equals_the_torch_one_with_the_same_weights(name, kwargs, shape):
    torch.manual_seed(0)
    built = get_model(name, num_classes=7, in_channels=shape[0], **kwargs).double()
    textbook = use_textbook_layers(copy.deepcopy(built))
    assert not [m for m in textbook.modules() if type(m) in TORCH_LAYERS]
    assert any(isinstance(m, cnnlab.nn.Conv2d) for m in textbook.modules())
    assert list(textbook.state_dict()) == list(built.state_dict())
    x = torch.randn(4, shape[0], shape[1], shape[1], dtype=torch.float64)
    for mode in ("eval", "train"):  # running statistics, then batch statistics and dropout
        outs = []
        for net in (built, textbook):
            net.train(mode == "train")
            torch.manual_seed(1)  # the same dropout masks
            out = net(x)
            out = out[0] if isinstance(out, tuple) else out
            out.square().sum().backward()
            outs.append(out)
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-9, atol=1e-10)
    for (key, ours), theirs in zip(textbook.named_parameters(), built.parameters(), strict=True):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-7, atol=1e-9, msg=key)
    if name == "resnet20":  # batch norm's running statistics moved alike in training mode
        torch.testing.assert_close(textbook.bn1.running_var, built.bn1.running_var)


def test_get_model_takes_the_layer_set_and_state_dicts_move_between_them():
    torch.manual_seed(0)
    textbook = get_model("lenet", layers="textbook")
    assert isinstance(textbook.features[0], cnnlab.nn.Conv2d)
    assert isinstance(textbook.features[2], cnnlab.nn.MaxPool2d)
    built = get_model("lenet")
    built.load_state_dict(textbook.state_dict())
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(built(x), textbook(x))
    with pytest.raises(UserError, match="torch .*textbook"):
        get_model("lenet", layers="numpy")


def test_a_setting_the_textbook_layers_lack_is_refused_naming_the_layer():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2, count_include_pad=False, padding=1))
    with pytest.raises(UserError, match=r"layer 1 \(AvgPool2d\).*count_include_pad=False"):
        use_textbook_layers(net)
    assert isinstance(net[0], nn.Conv2d)  # nothing was swapped


def test_the_config_key_builds_the_textbook_network_and_stays_off_detectors(make_cfg):
    cfg = make_cfg(["model=vgg11_bn", "model.layers=textbook"])
    net = build_network(cfg.model, 10, 1, 32)
    assert isinstance(net.features[1], cnnlab.nn.BatchNorm2d)
    default = build_network(make_cfg(["model=vgg11_bn"]).model, 10, 1, 32)
    assert type(default.features[1]) is nn.BatchNorm2d
    seg = make_cfg(["data=shapes_segmentation", "model=fcn32s", "+model.layers=textbook"])
    with pytest.raises(UserError, match="segmentation model"):
        build_network(seg.model, 3, 3, 64)
