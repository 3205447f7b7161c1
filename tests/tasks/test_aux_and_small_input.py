"""GoogLeNet's auxiliary losses in the training module, and small_input chosen by image size."""

import pytest
import torch
import torch.nn.functional as F

from cnnlab.cli.train import train
from cnnlab.factory import build
from cnnlab.models import get_model
from cnnlab.tasks.classification import ClassificationModule


def test_aux_logits_add_their_weighted_loss():
    torch.manual_seed(0)
    net = get_model("googlenet", num_classes=10, in_channels=1, small_input=True, aux_logits=True)
    module = ClassificationModule(net, optimizer=torch.optim.SGD, num_classes=10)
    x, y = torch.randn(4, 1, 32, 32), torch.randint(0, 10, (4,))
    net.train()
    torch.manual_seed(1)
    loss, logits, _ = module._step((x, y))
    torch.manual_seed(1)
    main, aux1, aux2 = net(x)
    expected = F.cross_entropy(main, y) + 0.3 * (
        F.cross_entropy(aux1, y) + F.cross_entropy(aux2, y)
    )
    assert torch.allclose(loss, expected)
    assert logits.shape == (4, 10)
    net.eval()  # in evaluation the network gives its main logits only
    loss, logits, _ = module._step((x, y))
    assert torch.allclose(loss, F.cross_entropy(net(x), y))


@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_googlenet_with_aux_classifiers_trains_one_batch(make_cfg):
    overrides = ["model=googlenet", "model.aux_logits=true", "debug=fast_dev_run"]
    metrics = train(make_cfg([*overrides, "data.batch_size=4"]))
    assert metrics["global_step"] == 1 and 0.0 <= metrics["test/acc"] <= 1.0


def test_small_input_follows_the_image_size(make_cfg):
    cfg = make_cfg(["model=alexnet"])
    assert cfg.model.small_input is None
    small = build.build_network(cfg.model, 10, 1, image_size=32)
    large = build.build_network(cfg.model, 10, 1, image_size=224)
    assert small.small_input and not large.small_input
    cfg.model.small_input = False  # a value the user set wins
    forced = build.build_network(cfg.model, 10, 1, image_size=32)
    assert not forced.small_input
