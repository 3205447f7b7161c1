"""ResNet-18 trains the same with cnnlab.nn.BatchNorm2d as with torch's.

Both layers compute the same function with the same gradients, so two runs from the same
weights and batches differ only by rounding. In float64 that starts near 1e-16; small-batch
training amplifies it roughly tenfold per step (measured: ~1e-12 relative after five steps),
so losses that agree to 1e-9 leave a hundredfold margin, while a wrong term in a gradient
formula would show at 1e-3 or worse after the first step. Float32 cannot make this check:
there one ulp in one weight moves the loss by 10% or more within ten steps of ResNet-18.
"""

import pytest
import torch

from cnnlab.errors import UserError
from cnnlab.models import get_model


def train(norm: str, state: dict, steps: int = 5) -> tuple[list[float], torch.nn.Module]:
    """Losses of ``steps`` SGD steps of resnet18 fitting one fixed random batch (float64)."""
    model = get_model("resnet18", num_classes=10, in_channels=1, norm=norm).double()
    model.load_state_dict(state)  # the same starting weights for both norms
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 16, 16, generator=data, dtype=torch.float64)  # (B, C, H, W)
    y = torch.randint(0, 10, (8,), generator=data)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


@pytest.mark.slow  # about 1 s or more: the fast tier stays under 2 minutes
def test_resnet18_losses_agree_with_torch_batch_norm():
    torch.manual_seed(0)
    state = get_model("resnet18", num_classes=10, in_channels=1).double().state_dict()
    torch_losses, torch_model = train("torch", state)
    textbook_losses, textbook_model = train("textbook", state)
    assert torch_losses[-1] < 0.1 * torch_losses[0]  # it learns the batch (2.69 -> 0.012)
    assert textbook_losses == pytest.approx(torch_losses, rel=1e-9)
    # The running statistics and weights followed the same path: eval outputs agree too.
    x = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(
        textbook_model.eval()(x), torch_model.eval()(x), rtol=1e-7, atol=1e-9
    )


def test_norm_layers_by_name_and_unknown_names_refused():
    model = get_model("resnet18", norm="textbook")
    assert type(model.layer1[0].bn1).__module__ == "cnnlab.nn.batchnorm"
    assert model.state_dict().keys() == get_model("resnet18").state_dict().keys()
    with pytest.raises(UserError, match="choose one of torch, textbook"):
        get_model("resnet50", norm="layer")
