"""Grad-CAM with a known answer: a LeNet-5 learns that a bright mark in the top-left quarter
decides the class (everything else is noise), and its class activation map must put at least
half of its mass in that quarter."""

import pytest
import torch

from cnnlab.errors import UserError
from cnnlab.inference.cam import cam_layer, grad_cam
from cnnlab.models import get_model

REGION = (slice(0, 16), slice(0, 16))  # the top-left quarter of a 32x32 picture


def marked_pictures(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise pictures; label 1 has a bright 6x6 mark somewhere inside the top-left quarter."""
    x = torch.rand(n, 1, 32, 32, generator=generator) * 0.5
    y = torch.randint(0, 2, (n,), generator=generator)
    for i in torch.nonzero(y).flatten().tolist():
        r, c = torch.randint(0, 10, (2,), generator=generator).tolist()
        x[i, 0, r : r + 6, c : c + 6] = 1.0
    return x, y


@pytest.fixture(scope="module")
def trained_lenet():
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = get_model("lenet", num_classes=2, in_channels=1)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(150):
        x, y = marked_pictures(32, generator)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    net.eval()
    x, y = marked_pictures(200, generator)
    with torch.no_grad():
        assert (net(x).argmax(1) == y).float().mean() > 0.95  # it has learnt the mark
    return net


def test_the_heatmap_sits_on_the_deciding_region(trained_lenet):
    generator = torch.Generator().manual_seed(1)
    x, y = marked_pictures(40, generator)
    name, layer = cam_layer(trained_lenet)
    assert name == "features.3"  # the family's default: C3, the last convolution
    shares = []
    for picture in x[y == 1][:10]:
        cam = grad_cam(trained_lenet, picture[None], 1, layer)
        assert cam.shape == (32, 32) and 0 <= float(cam.min()) and float(cam.max()) <= 1
        shares.append(float(cam[REGION].sum() / cam.sum()))
    assert sum(shares) / len(shares) >= 0.5, shares


def test_a_layer_that_does_not_exist_is_named_with_the_choices(trained_lenet):
    with pytest.raises(UserError, match="predict.cam_layer=features.9.*features.3"):
        cam_layer(trained_lenet, "features.9")


@pytest.mark.parametrize(
    ("name", "layer"),
    [("resnet18", "layer4"), ("resnet20", "layer3"), ("googlenet", "inception5b"),
     ("alexnet", "features.10"), ("vgg11_bn", "features.25")],
)  # fmt: skip
def test_every_family_declares_its_last_convolutional_stage(name, layer):
    net = get_model(
        name, num_classes=3, in_channels=3, **({"small_input": True} if name[0] in "av" else {})
    )
    assert cam_layer(net)[0] == layer


def test_predict_writes_the_heatmap_for_the_asked_class(digits_checkpoint, make_cfg, tmp_path):
    import json

    from PIL import Image

    from cnnlab.cli.predict import predict

    (tmp_path / "in").mkdir()
    Image.new("L", (40, 40), 30).save(tmp_path / "in" / "dark.png")
    overrides = [f"ckpt_path={digits_checkpoint}", f"input={tmp_path / 'in'}", "predict.cam=true"]
    out = predict(make_cfg([*overrides, "predict.cam_class=3"], "predict", tmp_path / "p"))
    assert json.loads((out / "predictions.json").read_text())[0]["file"].endswith("dark.png")
    drawn = Image.open(out / "dark_cam.png")
    assert drawn.mode == "RGB" and drawn.height >= 128  # captioned, at least 128 pixels high
    with pytest.raises(UserError, match="predict.cam_class=cat: not a class .* 0, 1, 2"):
        predict(make_cfg([*overrides, "predict.cam_class=cat"], "predict", tmp_path / "q"))
