"""GoogLeNet: parameter counts, torchvision's layout, the aux-classifier contract, small inputs.

Counting happens on the meta device (no memory, no initialisation); forward passes run at 32x32
except one 224x224 pass that checks the paper's map sizes.
"""

import pytest
import torch
import torchvision

from cnnlab.errors import UserError
from cnnlab.models import get_model
from cnnlab.models.parts import head_names

# At 224x224x3 and 1,000 classes, aux classifiers off / on.
IMAGENET_PARAMS = {
    "googlenet": (6_624_904, 13_004_888),
    "googlenet_2014": (6_998_552, 13_378_280),  # the paper's Table 1 says ~6.8M (no biases)
}
NAMES = sorted(IMAGENET_PARAMS)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: torch.nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("aux", [False, True])
def test_imagenet_parameter_counts(name, aux):
    with torch.device("meta"):
        assert n_params(get_model(name, aux_logits=aux)) == IMAGENET_PARAMS[name][aux]


@pytest.mark.parametrize("aux", [False, True])
def test_googlenet_matches_torchvision_layer_for_layer(aux):
    with torch.device("meta"):
        ours = get_model("googlenet", aux_logits=aux)
        reference = torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=True)
    assert n_params(ours) == n_params(reference)
    assert shapes(ours) == shapes(reference)


def test_torchvision_weights_load_into_ours():
    reference = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    ours = get_model("googlenet").eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference.eval()(x))


def test_googlenet_2014_is_the_papers_network():
    model = get_model("googlenet_2014", aux_logits=True).eval()
    assert model.conv1.bn is None and model.conv1.conv.bias is not None
    assert model.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert isinstance(model.lrn1, torch.nn.LocalResponseNorm)
    assert model.dropout.p == 0.4 and model.aux1.dropout.p == 0.7
    sizes = {}
    for name in ("maxpool2", "maxpool3", "inception4a", "maxpool4", "inception5b"):
        getattr(model, name).register_forward_hook(lambda m, i, o, n=name: sizes.update({n: o}))
    model.aux1.register_forward_hook(lambda m, i, o: sizes.update(aux=m.pool(i[0])))
    with torch.no_grad():
        model.train()  # run the aux classifiers too
        model(torch.randn(1, 3, 224, 224))
    got = {k: tuple(v.shape[1:]) for k, v in sizes.items()}
    assert got == {
        "maxpool2": (192, 28, 28),
        "maxpool3": (480, 14, 14),
        "inception4a": (512, 14, 14),
        "aux": (512, 4, 4),  # the paper's 5x5/3 average pool
        "maxpool4": (832, 7, 7),
        "inception5b": (1024, 7, 7),
    }


@pytest.mark.parametrize("name", NAMES)
def test_aux_outputs_in_training_only(name):
    model = get_model(name, num_classes=10, aux_logits=True, small_input=True)
    assert model.aux_weight == 0.3 and head_names(model) == ("fc", "aux1", "aux2")
    out = model(torch.randn(2, 3, 32, 32))
    assert type(out) is tuple and [o.shape for o in out] == [(2, 10)] * 3
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_aux_off_leaves_no_aux_modules():
    model = get_model("googlenet", num_classes=10, small_input=True)
    assert model.aux1 is None and model.aux2 is None and head_names(model) == ("fc",)
    assert isinstance(model(torch.randn(2, 3, 32, 32)), torch.Tensor)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("in_channels", [1, 3])
def test_forward_backward_small_input(name, in_channels):
    model = get_model(
        name, num_classes=10, in_channels=in_channels, small_input=True, aux_logits=True
    )
    logits, aux1, aux2 = model(torch.randn(2, in_channels, 32, 32))
    assert torch.isfinite(logits).all() and logits.shape == (2, 10)
    (logits.sum() + 0.3 * (aux1.sum() + aux2.sum())).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_small_input_keeps_the_state_dict_keys():
    with torch.device("meta"):
        big, small = (
            shapes(get_model("googlenet")),
            shapes(get_model("googlenet", small_input=True)),
        )
    assert big.keys() == small.keys()
    assert [k for k in big if big[k] != small[k]] == ["conv1.conv.weight"]
    assert small["conv1.conv.weight"] == (64, 3, 3, 3)


def test_small_input_none_means_the_imagenet_layout():
    model = get_model("googlenet", small_input=None)
    assert model.conv1.conv.kernel_size == (7, 7)


def test_imagenet_layout_takes_small_images_down_to_its_limit():
    model = get_model("googlenet", num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
        assert model(torch.zeros(1, 3, 15, 15)).shape == (1, 10)
    for side in (14, 8):
        with pytest.raises(UserError, match=r"layer maxpool\d .*small_input=true"):
            model(torch.zeros(1, 3, side, side))
    with pytest.raises(UserError, match=r"layer maxpool4 .*30x30 image.*31x31"):
        get_model("googlenet_2014", num_classes=10).eval()(torch.zeros(1, 3, 30, 30))


def test_papers_aux_pool_refuses_other_sizes():
    model = get_model("googlenet_2014", num_classes=10, aux_logits=True)
    with pytest.raises(UserError, match=r"aux1\.pool .*223-270 px.*aux_logits=false"):
        model(torch.zeros(1, 3, 64, 64))
    model.eval()  # no aux classifiers at evaluation: any size from 31x31 goes
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)


def test_norm_picks_the_batch_norm_with_torchvisions_eps():
    from cnnlab.nn import BatchNorm2d

    model = get_model("googlenet", norm="textbook", small_input=True)
    assert isinstance(model.conv1.bn, BatchNorm2d) and model.conv1.bn.eps == 0.001
    assert get_model("googlenet", small_input=True).inception5b.branch4[1].bn.eps == 0.001
    with pytest.raises(UserError, match="torch, textbook"):
        get_model("googlenet", norm="foo")
    with pytest.raises(UserError, match="no batch norm"):
        get_model("googlenet_2014", norm="torch")


def test_torchvision_initialisation():
    model = get_model("googlenet")
    w = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.std().item() - 0.01) < 0.001 and w.abs().max() <= 2
    assert all((model.conv1.bn.weight == 1).tolist() + (model.conv1.bn.bias == 0).tolist())
