"""torchvision's FCN and DeepLabV3 on ResNet-50: sizes, the auxiliary loss, the config path and
published weights read from a tmp hub cache (never the network)."""

from urllib.error import URLError

import pytest
import torch
import torch.nn.functional as F
import torchvision
from hydra.core.global_hydra import GlobalHydra

from cnnlab.errors import UserError
from cnnlab.factory import build
from cnnlab.models.segmentation_torchvision import deeplabv3_resnet50, fcn_resnet50
from cnnlab.tasks.segmentation import SegmentationModule

from composing import compose_run

K = 4  # shapes_segmentation: background, circle, square, triangle
FCN_FILE = "fcn_resnet50_coco-1167a1af.pth"  # the file name in the weights' URL


@pytest.fixture(scope="module")
def fcn_config(tmp_path_factory):
    """The config of `cnnlab-train data=shapes_segmentation model=fcn_resnet50` (aux head on)."""
    tmp = tmp_path_factory.mktemp("fcn_config")
    overrides = [
        "data=shapes_segmentation",
        "model=fcn_resnet50",
        "model.aux_loss=true",
        "model.aux_weight=0.4",
    ]
    cfg = compose_run(overrides, "train", tmp / "run", tmp / "data")
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture(scope="module")
def fcn_module(fcn_config) -> SegmentationModule:
    """The task module and network that cnnlab-train builds from that config."""
    task, datamodule = build.build_datamodule(fcn_config.data)
    return build.build_module(fcn_config, task, datamodule)


@pytest.fixture(scope="module")
def deeplab() -> torch.nn.Module:
    return deeplabv3_resnet50(num_classes=K)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A tmp torch hub cache; downloads fail as they would offline."""
    folder = tmp_path / "hub"
    (folder / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(folder))

    def offline(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return folder / "checkpoints"


def test_config_builds_a_segmentation_model(fcn_config, fcn_module):
    assert build.model_task(fcn_config.model._target_) == "segmentation"
    assert {"fcn_resnet50", "deeplabv3_resnet50"} <= set(build.models_for_task("segmentation"))
    with pytest.raises(UserError, match="segmentation model"):
        build.check_task(fcn_config.model, "classification")
    net = fcn_module.net
    assert net.task == "segmentation" and net.aux_weight == 0.4
    assert net.classifier[-1].out_channels == net.aux_classifier[-1].out_channels == K


@pytest.mark.parametrize("size", [(32, 48), (97, 131)])
@pytest.mark.parametrize("name", ["fcn", "deeplab"])
def test_eval_scores_have_the_image_size(fcn_module, deeplab, name, size):
    net = fcn_module.net if name == "fcn" else deeplab
    with torch.no_grad():
        scores = net.eval()(torch.rand(1, 3, *size))
    assert isinstance(scores, torch.Tensor)  # no aux scores in eval, even with the aux head
    assert scores.shape == (1, K, *size) and torch.isfinite(scores).all()


def test_training_loss_adds_the_weighted_aux_loss(fcn_module):
    net = fcn_module.net.train()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 32, 32, generator=gen)
    masks = torch.randint(0, K, (2, 32, 32), generator=gen)
    masks[:, :, :5] = 255  # ignored pixels
    torch.manual_seed(1)  # the same dropout masks in both passes
    loss, scores, _ = fcn_module._step((images, masks))
    torch.manual_seed(1)
    out, aux = net(images)
    assert out.shape == aux.shape == (2, K, 32, 32)
    ce = F.cross_entropy(out, masks, ignore_index=255)
    aux_ce = F.cross_entropy(aux, masks, ignore_index=255)
    torch.testing.assert_close(loss, ce + 0.4 * aux_ce)
    torch.testing.assert_close(scores, out)  # the main head's scores, not the auxiliary's
    loss.backward()
    assert net.aux_classifier[0].weight.grad is not None
    assert net.backbone.layer1[0].conv1.weight.grad is not None


def test_without_aux_loss_training_returns_the_scores(deeplab):
    assert deeplab.aux_classifier is None
    out = deeplab.train()(torch.rand(2, 3, 32, 32))  # 2 images: ASPP's pooled branch has BN
    assert isinstance(out, torch.Tensor) and out.shape == (2, K, 32, 32)


@pytest.mark.slow  # about 1 s or more: the fast tier stays under 2 minutes
def test_published_weights_come_from_the_hub_cache(hub):
    reference = torchvision.models.segmentation.fcn_resnet50(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    ).state_dict()
    torch.save(reference, hub / FCN_FILE)

    voc = fcn_resnet50(num_classes=21, weights="DEFAULT", aux_loss=True)
    mine = voc.state_dict()
    assert mine.keys() == reference.keys()  # torchvision's key names, heads untouched
    assert all(torch.equal(mine[k], v) for k, v in reference.items())

    net = fcn_resnet50(num_classes=K, weights="COCO_WITH_VOC_LABELS_V1")  # aux_loss=False
    assert net.aux_classifier is None and net.classifier[-1].out_channels == K
    mine = net.state_dict()
    kept = [k for k in reference if not k.startswith(("aux_classifier.", "classifier.4."))]
    assert set(mine) == {*kept, "classifier.4.weight", "classifier.4.bias"}
    assert all(torch.equal(mine[k], reference[k]) for k in kept)
    out = net.train()(torch.rand(1, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (1, K, 32, 32)


@pytest.mark.parametrize(
    ("kwargs", "filename"),
    [
        ({"weights": "DEFAULT"}, FCN_FILE),
        ({"weights_backbone": "IMAGENET1K_V2"}, "resnet50-11ad3fa6.pth"),
    ],
)
def test_offline_weights_request_names_the_file(hub, kwargs, filename):
    with pytest.raises(UserError) as caught:
        fcn_resnet50(num_classes=K, **kwargs)
    assert filename in str(caught.value) and str(hub) in str(caught.value)
    assert not any(hub.glob("*.pth"))


@pytest.mark.parametrize(
    ("kwargs", "listed"),
    [
        ({"weights": "COCO_V1"}, "COCO_WITH_VOC_LABELS_V1"),
        ({"weights_backbone": "IMAGENET1K_V3"}, "IMAGENET1K_V2"),
    ],
)
def test_unknown_weights_name_lists_the_names(kwargs, listed):
    with pytest.raises(UserError, match=listed):
        deeplabv3_resnet50(num_classes=K, **kwargs)


def test_grey_images_and_one_class_are_refused():
    with pytest.raises(UserError, match="RGB"):
        fcn_resnet50(num_classes=K, in_channels=1)
    with pytest.raises(UserError, match="num_classes=1"):
        deeplabv3_resnet50(num_classes=1)
