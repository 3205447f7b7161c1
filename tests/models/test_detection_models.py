"""Faster R-CNN builders: cnnlab backbones and torchvision's detectors, all offline."""

from urllib.error import URLError

import pytest
import torch
from hydra import compose, initialize_config_dir

from cnnlab.errors import UserError
from cnnlab.factory.configs import config_dir
from cnnlab.models import detection, get_model, torchvision_weights
from cnnlab.models.detection import fasterrcnn, fasterrcnn_mobilenet_v3_large_fpn

LOSSES = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
SMALL = dict(  # 128x128 images, few proposals: fast on a CPU
    min_size=128,
    max_size=128,
    anchor_sizes=[[16], [32], [64], [128]],
    rpn_pre_nms_top_n_train=300,
    rpn_pre_nms_top_n_test=200,
    rpn_post_nms_top_n_train=100,
    rpn_post_nms_top_n_test=50,
    rpn_batch_size_per_image=64,
    box_batch_size_per_image=32,
)


def images_and_targets() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    torch.manual_seed(0)
    images = [torch.rand(3, 128, 128), torch.rand(3, 128, 128)]
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 40.0, 50.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},  # no objects
    ]
    return images, targets


def detector(backbone: str, **kwargs) -> torch.nn.Module:
    extra = {"small_input": True} if backbone.startswith("vgg") else {}  # same features, small head
    net = get_model(backbone, num_classes=10, **extra)
    return fasterrcnn(net, num_classes=4, **(SMALL | kwargs))


@pytest.mark.parametrize(
    ("backbone", "kwargs"),
    [
        ("resnet18", {}),
        ("resnet18", {"fpn": False}),
        ("resnet20", {"out_channels": 32}),
        ("vgg11", {"out_channels": 64}),
    ],
)
def test_train_losses_and_eval_detections(backbone, kwargs):
    net = detector(backbone, **kwargs)
    assert net.task == "detection"
    images, targets = images_and_targets()
    net.train()
    losses = net(images, targets)
    assert set(losses) == LOSSES
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in net.backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)

    net.eval()
    with torch.no_grad():
        out = net(images[:1])
    (pred,) = out
    assert set(pred) == {"boxes", "labels", "scores"}
    n = pred["boxes"].shape[0]
    assert pred["boxes"].shape == (n, 4) and pred["scores"].shape == pred["labels"].shape == (n,)
    assert pred["labels"].dtype == torch.int64
    assert ((pred["labels"] >= 1) & (pred["labels"] < 4)).all()


def test_without_fpn_all_anchor_sizes_go_on_the_one_map():
    net = detector("resnet18", fpn=False)
    assert net.backbone.out_channels == 512
    assert net.rpn.anchor_generator.sizes == ((16, 32, 64, 128),)
    assert net.roi_heads.box_roi_pool.featmap_names == ["0"]


def test_fpn_maps_match_anchor_levels():
    net = detector("resnet18")
    assert net.backbone.out_channels == 256
    assert len(net.rpn.anchor_generator.sizes) == 4  # 3 stages + the pooled level
    assert net.roi_heads.box_roi_pool.featmap_names == ["0", "1", "2"]
    with pytest.raises(UserError, match="anchor_sizes has 2 levels"):
        detector("resnet18", anchor_sizes=[[16], [32]])


def test_trainable_layers_freezes_the_early_stages():
    net = detector("resnet18", trainable_layers=2)
    body = net.backbone.body
    for name, p in body.named_parameters():
        assert p.requires_grad == name.startswith(("layer3.", "layer4.")), name
    assert all(p.requires_grad for p in net.backbone.fpn.parameters())
    assert all(p.requires_grad for p in net.roi_heads.parameters())

    frozen = detector("vgg11", trainable_layers=0, out_channels=32)
    assert not any(p.requires_grad for p in frozen.backbone.body.parameters())
    with pytest.raises(UserError, match="trainable_layers=6"):
        detector("vgg11", trainable_layers=6)


def test_grey_images_and_other_families_are_refused():
    with pytest.raises(UserError, match="RGB"):
        detector("resnet18", in_channels=1)
    with pytest.raises(UserError, match="RGB"):
        fasterrcnn_mobilenet_v3_large_fpn(num_classes=4, in_channels=1)
    with pytest.raises(UserError, match="1-channel"):
        fasterrcnn(get_model("resnet18", in_channels=1), num_classes=4)
    with pytest.raises(UserError, match="LeNet"):
        fasterrcnn(get_model("lenet"), num_classes=4)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("fasterrcnn_resnet50_fpn", 41_362_531),
        ("fasterrcnn_resnet50_fpn_v2", 43_266_403),
        ("fasterrcnn_mobilenet_v3_large_fpn", 18_964_879),
    ],
)
def test_torchvision_detectors_build_offline(name, params):
    net = getattr(detection, name)(num_classes=4)
    assert net.task == "detection"
    assert net.roi_heads.box_predictor.cls_score.out_features == 4
    assert sum(p.numel() for p in net.parameters()) == params


@pytest.mark.slow  # about 1 s or more: the fast tier stays under 2 minutes
def test_torchvision_mobilenet_trains_and_predicts():
    net = fasterrcnn_mobilenet_v3_large_fpn(num_classes=4, min_size=128, max_size=128)
    images, targets = images_and_targets()
    losses = net.train()(images, targets)
    assert set(losses) == LOSSES and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    with torch.no_grad():
        (pred,) = net.eval()(images[:1])
    assert set(pred) == {"boxes", "labels", "scores"}


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    folder = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(folder))

    def offline(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return folder / "checkpoints"


@pytest.mark.parametrize(
    ("kwargs", "filename"),
    [
        ({"weights": "COCO_V1"}, "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"),
        ({"weights_backbone": "IMAGENET1K_V1"}, "mobilenet_v3_large-8738ca79.pth"),
    ],
)
def test_offline_weights_request_names_the_file(offline_hub, kwargs, filename):
    loader = torchvision_weights.tv_api.load_state_dict_from_url
    with pytest.raises(UserError) as caught:
        fasterrcnn_mobilenet_v3_large_fpn(num_classes=4, **kwargs)
    assert filename in str(caught.value) and str(offline_hub) in str(caught.value)
    assert torchvision_weights.tv_api.load_state_dict_from_url is loader  # left as it was
    assert not any(offline_hub.glob("*.pth"))


def test_unknown_weights_name_lists_the_names():
    with pytest.raises(UserError, match="COCO_V1"):
        fasterrcnn_mobilenet_v3_large_fpn(num_classes=4, weights="COCO_V9")


def test_config_composes_with_a_backbone_group():
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["model=fasterrcnn", "model/backbone=vgg16"])
    assert cfg.model._target_ == "cnnlab.models.detection.fasterrcnn"
    assert cfg.model.backbone._target_ == "cnnlab.models.vgg.vgg16"
    assert len(cfg.model.anchor_sizes) == cfg.model.fpn_stages + 1
