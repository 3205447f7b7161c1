"""R-CNN and Fast R-CNN networks: where the trunk is cut, losses in training, detections in
evaluation mapped back to each picture, both RoI poolings alike, proposals found on the spot."""

import pytest
import torch

from cnnlab.errors import UserError
from cnnlab.models import get_model
from cnnlab.models.rcnn import fast_rcnn, rcnn, trunk_at_stride
from cnnlab.models.trunk import trunk_of

SMALL = dict(fc_hidden=64, rois_per_image=16, roi_pool="torchvision")
LOSSES = {"loss_classifier", "loss_box_reg"}


def pictures():
    images = [torch.rand(3, 64, 64), torch.rand(3, 48, 80)]
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 40.0, 50.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    proposals = [
        torch.tensor([[8.0, 10.0, 40.0, 48.0], [30.0, 30.0, 60.0, 60.0], [0.0, 0.0, 64.0, 64.0]]),
        torch.tensor([[1.0, 1.0, 30.0, 30.0], [40.0, 10.0, 79.0, 47.0]]),
    ]
    return images, targets, proposals


@pytest.mark.parametrize(
    ("name", "extra", "last", "stride"),
    [
        ("resnet18", {}, "layer3", 16),
        ("vgg16", {"small_input": True}, "features29", 16),  # conv5_3's ReLU: pool5 left out
        ("alexnet", {}, "features11", 16),  # conv5 and its ReLU: the third pool would make it 32
    ],
)
@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_the_trunk_is_cut_at_stride_16(name, extra, last, stride):
    trunk = trunk_at_stride(trunk_of(get_model(name, num_classes=10, **extra)), 16)
    assert list(dict(trunk.body.named_children()))[-1] == last
    net = fast_rcnn(get_model(name, num_classes=10, **extra), num_classes=3, **SMALL)
    assert net.stride == stride


@pytest.mark.parametrize("builder", ["rcnn", "fast_rcnn"])
def test_losses_in_training_and_detections_in_evaluation(builder):
    backbone = get_model("resnet18", num_classes=10)
    if builder == "rcnn":
        net = rcnn(backbone, num_classes=3, crop_size=32, rois_per_image=16)
    else:
        net = fast_rcnn(backbone, num_classes=3, **SMALL)
    assert net.task == "detection"
    images, targets, proposals = pictures()
    net.train()
    losses = net(images, targets, proposals=proposals)
    assert set(losses) == LOSSES and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    # the proposals may also come inside the targets, as the data gives them in training
    with_proposals = [{**t, "proposals": p} for t, p in zip(targets, proposals, strict=True)]
    assert set(net(images, with_proposals)) == LOSSES
    net.eval()
    with torch.no_grad():
        found = net(images, proposals=proposals)
    for f, image in zip(found, images, strict=True):
        assert set(f) == {"boxes", "labels", "scores"}
        height, width = image.shape[-2:]
        assert torch.all(f["boxes"][:, 2] <= width) and torch.all(f["boxes"][:, 3] <= height)
        assert torch.all((f["labels"] >= 1) & (f["labels"] <= 2))


def test_resizing_inside_maps_the_detections_back():
    net = fast_rcnn(get_model("resnet18", num_classes=10), num_classes=3, min_size=128, **SMALL)
    net.eval()
    images, _, proposals = pictures()
    with torch.no_grad():
        found = net(images, proposals=proposals)
    # the 48 x 80 picture ran at 128 x 213; its boxes come back within its own 80 x 48
    assert torch.all(found[1]["boxes"][:, 2] <= 80) and torch.all(found[1]["boxes"][:, 3] <= 48)
    batch, factors, sizes = net.prepare(images)
    assert factors == [2.0, 128 / 48] and sizes == [(128, 128), (128, 213)]
    assert batch.shape == (2, 3, 128, 213)


def test_both_roi_poolings_give_the_same_detections():
    torch.manual_seed(0)
    textbook = fast_rcnn(
        get_model("resnet18", num_classes=10), 3, **(SMALL | {"roi_pool": "textbook"})
    )
    library = fast_rcnn(get_model("resnet18", num_classes=10), 3, **SMALL)
    library.load_state_dict(textbook.state_dict())
    images, _, proposals = pictures()
    textbook.eval(), library.eval()
    with torch.no_grad():
        a, b = textbook(images, proposals=proposals), library(images, proposals=proposals)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x["scores"], y["scores"])
        torch.testing.assert_close(x["boxes"], y["boxes"])


def test_bad_settings_are_refused():
    with pytest.raises(UserError, match="model.roi_pool='align'.*textbook or torchvision"):
        fast_rcnn(get_model("resnet18", num_classes=10), 3, **(SMALL | {"roi_pool": "align"}))
    with pytest.raises(UserError, match="RGB"):
        rcnn(get_model("resnet18", num_classes=10), 3, in_channels=1)


def test_without_given_proposals_selective_search_runs_on_the_picture(tmp_path):
    pytest.importorskip("cv2")
    settings = {"mode": "fast", "max": 50, "eval_max": 20, "cache_dir": str(tmp_path)}
    net = fast_rcnn(get_model("resnet18", num_classes=10), 3, proposals=settings, **SMALL)
    net.eval()
    images, _, _ = pictures()
    with torch.no_grad():
        found = net(images[:1])  # what cnnlab-predict does: the picture alone
    assert set(found[0]) == {"boxes", "labels", "scores"}
    assert any(tmp_path.rglob("*.*"))  # the proposals went to the cache


@pytest.mark.slow  # 20 steps of each detector
@pytest.mark.parametrize("builder", ["rcnn", "fast_rcnn"])
def test_a_short_training_lowers_the_loss_on_a_few_shapes(builder):
    pytest.importorskip("cv2")
    from cnnlab.data.proposals import ProposalSettings, proposals_for
    from cnnlab.data.shapes import ShapesDetectionDataModule

    torch.manual_seed(0)
    dm = ShapesDetectionDataModule(num_train=4, num_val=1, num_test=1, image_size=64, augment=False)
    dm.setup()
    images, targets = zip(*(dm.train_set[i] for i in range(4)), strict=True)
    settings = ProposalSettings(max=100, eval_max=50)
    found = [proposals_for((x * 255).round().to(torch.uint8), settings) for x in images]
    backbone = get_model("resnet20" if builder == "rcnn" else "resnet18", num_classes=10)
    if builder == "rcnn":
        net = rcnn(backbone, dm.num_classes, crop_size=16, rois_per_image=16)
    else:
        net = fast_rcnn(backbone, dm.num_classes, **SMALL)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    losses = []
    for _ in range(20):
        loss = sum(net(list(images), list(targets), proposals=found).values())
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
