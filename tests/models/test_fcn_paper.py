"""FCN on VGG as the paper builds it: the classifier as convolutions, padding 100, the crops."""

import pytest
import torch
from torch import nn

from cnnlab.models.fcn_paper import PaperFCN, coordinate_map, crop_offset
from cnnlab.models.segmentation import fcn8s, fcn16s, fcn32s
from cnnlab.models.vgg import vgg11, vgg16


def trainable(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@pytest.mark.slow  # two full-size classifiers (120M weights each): about 5 s
def test_the_convolutionalised_classifier_gives_the_classifiers_logits_at_224():
    torch.manual_seed(0)
    net = vgg11(num_classes=10).eval()  # the same classifier as VGG-16's, fewer convolutions
    convolutional = nn.Sequential(net.features, net.fc_as_convolutions()).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        dense = convolutional(x)
        logits = net(x)
    assert dense.shape == (2, 10, 1, 1)
    assert torch.allclose(dense.flatten(1), logits, atol=1e-5)
    fc6 = net.fc_as_convolutions()[0]
    assert fc6.weight.shape == (4096, 512, 7, 7)
    assert torch.equal(fc6.weight.flatten(1), net.classifier[0].weight)  # a reshape, no copy lost
    with torch.no_grad():  # and on a larger image it slides: one logit vector per 32 pixels
        assert convolutional(torch.randn(1, 3, 288, 256)).shape == (1, 10, 3, 2)


def test_fcn32s_on_vgg16_has_the_papers_134m_parameters_and_crops():
    with torch.device("meta"):  # shapes only: no memory, no time spent initialising
        net = fcn32s(vgg16(), num_classes=21)
        assert isinstance(net, PaperFCN)
        assert trainable(net) == 134_346_581
        assert net.offsets == ([], 19)
        assert fcn16s(vgg16(), num_classes=21).offsets == ([5], 27)
        assert fcn8s(vgg16(), num_classes=21).offsets == ([9, 5], 31)  # pool3, pool4; final


@pytest.mark.slow  # a full-size classifier: about 3 s
def test_the_pretrained_classifier_weights_reach_fc6_and_fc7():
    backbone = vgg11(num_classes=1000)
    fc6_linear, fc7_linear = backbone.classifier[0], backbone.classifier[3]
    net = fcn32s(backbone, num_classes=5)
    fc6, fc7 = net.fc[0], net.fc[3]
    assert torch.equal(fc6.weight.reshape(4096, -1), fc6_linear.weight)
    assert torch.equal(fc7.weight.flatten(1), fc7_linear.weight)
    assert torch.equal(fc6.bias, fc6_linear.bias)


@pytest.mark.slow  # each builds VGG's 120M-weight fc6/fc7 afresh: about 1.5 s
@pytest.mark.parametrize("builder", [fcn32s, fcn16s, fcn8s])
def test_any_input_size_gives_the_input_size_back(builder):
    net = builder(vgg11(num_classes=10, small_input=True), num_classes=3).eval()
    assert net.features.body[0].padding == (100, 100)
    with torch.no_grad():
        for size in [(97, 131), (32, 45)]:
            assert net(torch.randn(1, 3, *size)).shape == (1, 3, *size)


def test_the_final_upsampling_is_fixed_unless_asked_and_the_skips_are_full():
    with torch.device("meta"):
        net = fcn8s(vgg11(num_classes=10), num_classes=3)
        learned = fcn8s(vgg11(num_classes=10), num_classes=3, learn_final_upsampling=True)
    assert not isinstance(net.final_up.weight, nn.Parameter)
    assert all(up.weight.shape == (3, 3, 4, 4) for up in net.skip_ups)
    assert isinstance(learned.final_up.weight, nn.Parameter)


def test_coordinate_maps_compose_and_crops_line_up():
    layers = [nn.Conv2d(1, 1, 3, padding=100), nn.MaxPool2d(2, 2), nn.Conv2d(1, 1, 7)]
    # conv: x - 99; pool: 2x + 0.5; conv 7x7: x + 3  ->  2(x + 3) + 0.5 - 99
    assert coordinate_map(layers) == (2.0, -92.5)
    assert crop_offset((2.0, -10.0), (2.0, 0.0)) == 5
    with pytest.raises(Exception, match="line up"):
        crop_offset((2.0, 0.0), (2.0, -10.0))
