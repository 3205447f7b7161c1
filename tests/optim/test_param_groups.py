import torch
from torch import nn

from cnnlab.models import get_model
from cnnlab.optim.param_groups import weight_decay_groups


def test_norm_and_bias_parameters_get_no_decay():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = weight_decay_groups(model)
    assert {p.shape for p in decay["params"]} == {(4, 1, 3, 3), (2, 4)}
    assert len(no_decay["params"]) == 4 and no_decay["weight_decay"] == 0.0  # 2 biases, BN w+b


def test_every_parameter_is_in_exactly_one_group():
    model = get_model("resnet18")
    groups = weight_decay_groups(model)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_decay_everything_when_asked():
    model = nn.Linear(3, 2)
    assert weight_decay_groups(model, decay_norm_and_bias=True) == [
        {"params": list(model.parameters())}
    ]


def test_groups_feed_torch_optimizers():
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    opt = torch.optim.AdamW(weight_decay_groups(model), lr=0.1, weight_decay=0.5)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
