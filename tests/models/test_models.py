"""Every registered model: output shape, a backward pass, parameter counts from the papers."""

import pytest
import torch
import torchvision

from cnnlab.errors import UserError
from cnnlab.models import get_model, list_models
from cnnlab.models.registry import register_model

# At 224x224x3 and 1,000 classes these equal torchvision's counts (same architecture).
IMAGENET_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


# Families whose default (ImageNet) layout is too large or too heavy for 32x32 images.
SMALL_INPUT_FAMILIES = ("alexnet", "vgg")


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# The deepest ResNets take most of this test's time and add no layer kind the others lack.
HEAVY = ("resnet101", "resnet152")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] * (n in HEAVY)) for n in list_models()]
)
@pytest.mark.parametrize("in_channels", [1, 3])
def test_forward_backward(name, in_channels):
    small = {"small_input": True} if name.startswith(SMALL_INPUT_FAMILIES) else {}
    model = get_model(name, num_classes=10, in_channels=in_channels, **small)
    x = torch.randn(2, in_channels, 32, 32)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_lenet_has_61706_parameters():
    assert n_params(get_model("lenet", num_classes=10, in_channels=1)) == 61_706


def test_lenet_refuses_other_sizes_naming_the_fix():
    with pytest.raises(UserError, match="data.image_size=32"):
        get_model("lenet")(torch.zeros(1, 1, 28, 28))


@pytest.mark.parametrize("name", sorted(IMAGENET_PARAMS))
def test_resnet_parameter_counts(name):
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        ours = get_model(name, num_classes=1000, in_channels=3)
        reference = getattr(torchvision.models, name)(weights=None)
    assert n_params(ours) == IMAGENET_PARAMS[name]
    assert n_params(ours) == n_params(reference)


def test_resnet18_matches_torchvision_layer_for_layer():
    ours = get_model("resnet18").state_dict()
    reference = torchvision.models.resnet18(weights=None).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


def test_zero_init_residual_starts_blocks_as_identity():
    model = get_model("resnet18", zero_init_residual=True)
    assert torch.count_nonzero(model.layer1[0].bn2.weight) == 0


def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="registered already"):
        register_model("lenet")(lambda **kw: None)
    with pytest.raises(UserError, match="Available models: .*lenet"):
        get_model("nosuchmodel")
