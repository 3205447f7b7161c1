"""YOLO v1: target assignment and the loss on hand-made boxes, letterboxing, NMS against
torchvision's, decoding, and the built network on several backbones."""

import math

import pytest
import torch
from torchvision.ops import batched_nms

from cnnlab.errors import UserError
from cnnlab.models import get_model
from cnnlab.models.letterbox import FILL, letterbox, letterbox_boxes, unletterbox_boxes
from cnnlab.models.nms import nms
from cnnlab.models.yolo import yolo
from cnnlab.models.yolo_loss import GridPrediction, assign, yolo_loss

LOSSES = {"loss_coord", "loss_obj", "loss_noobj", "loss_class"}
SMALL = dict(image_size=64, grid=4, head_convs=1, head_channels=16, fc_hidden=32)


def close(actual: torch.Tensor, expected: list) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected), rtol=1e-5, atol=1e-5)


def grid_of(boxes: dict, s: int, b: int) -> torch.Tensor:
    """Predicted corners (S, S, B, 4), all a tiny box in the top-left corner but those given."""
    corners = torch.tensor([0.0, 0.0, 0.01, 0.01]).repeat(s, s, b, 1)
    for (row, col, j), box in boxes.items():
        corners[row, col, j] = torch.tensor(box)
    return corners


def test_the_cell_of_the_centre_and_its_best_box_are_responsible():
    # object A, class 2, centre (0.25, 0.2): row 0, column 0 of a 2 x 2 grid; of that cell's
    # boxes, box 1 lies inside A and covers half of it (IoU 0.5), box 0 barely touches it
    predicted = grid_of({(0, 0, 0): (0.0, 0.0, 0.06, 0.06), (0, 0, 1): (0.1, 0.1, 0.4, 0.3)}, 2, 2)
    a = torch.tensor([[0.05, 0.05, 0.45, 0.35]])
    t = assign(a, torch.tensor([2]), predicted, num_classes=3)
    assert t.responsible.nonzero().tolist() == [[0, 0, 1]]
    # x, y: the centre's place in its cell; then the square roots of the size of the picture
    expected = [0.25 * 2 - 0, 0.2 * 2 - 0, math.sqrt(0.4), math.sqrt(0.3)]
    assert t.boxes[0, 0, 1].tolist() == pytest.approx(expected)
    assert t.confidence[0, 0, 1].item() == pytest.approx(0.5)  # 0.3 x 0.2 / (0.4 x 0.3)
    assert t.confidence.sum().item() == pytest.approx(0.5)  # every other box: 0
    assert t.has_object.nonzero().tolist() == [[0, 0]]
    assert t.probs[0, 0].tolist() == [0.0, 1.0, 0.0] and t.dropped == 0


def test_objects_sharing_a_cell_take_distinct_boxes_largest_first():
    # B (class 3, 0.3 x 0.2) and C (class 1, 0.1 x 0.4) both centre in row 1, column 1;
    # box 0 of that cell is exactly B and overlaps C too: B, the larger, takes it, C gets box 1
    # even though box 1 fits it worse; D, a third object there, finds no free box
    b, c = (0.6, 0.6, 0.9, 0.8), (0.7, 0.55, 0.8, 0.95)
    predicted = grid_of({(1, 1, 0): b, (1, 1, 1): (0.55, 0.9, 0.6, 0.95)}, 2, 2)
    d = (0.74, 0.74, 0.76, 0.76)
    t = assign(torch.tensor([c, d, b]), torch.tensor([1, 2, 3]), predicted, num_classes=3)
    assert t.responsible.nonzero().tolist() == [[1, 1, 0], [1, 1, 1]]
    assert t.confidence[1, 1, 0].item() == pytest.approx(1.0)
    assert t.boxes[1, 1, 0].tolist() == pytest.approx([0.5, 0.4, math.sqrt(0.3), math.sqrt(0.2)])
    assert t.boxes[1, 1, 1].tolist() == pytest.approx([0.5, 0.5, math.sqrt(0.1), math.sqrt(0.4)])
    assert t.confidence[1, 1, 1].item() == 0.0  # box 1 does not touch C
    assert t.probs[1, 1].tolist() == [0.5, 0.0, 0.5]  # the share of each class in the cell
    assert t.dropped == 1


def test_a_centre_on_the_far_edge_belongs_to_the_last_cell():
    t = assign(torch.tensor([[0.8, 0.8, 1.0, 1.0]]), torch.tensor([1]), grid_of({}, 3, 1), 1)
    assert t.responsible.nonzero().tolist() == [[2, 2, 0]]


def test_an_empty_picture_has_no_targets():
    t = assign(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), grid_of({}, 2, 2), 3)
    assert not t.responsible.any() and not t.has_object.any() and t.dropped == 0


def hand_prediction() -> GridPrediction:
    """One cell (S = 1), two boxes, two classes."""
    boxes = torch.tensor([[[[[0.5, 0.5, 0.5, 0.5], [0.2, 0.3, 0.4, 0.6]]]]])  # (1, 1, 1, 2, 4)
    return GridPrediction(boxes, torch.tensor([[[[0.8, 0.3]]]]), torch.tensor([[[[0.7, 0.3]]]]))


def test_the_loss_of_a_hand_made_example():
    pred = hand_prediction()
    # box 0 is (0.375, 0.375, 0.625, 0.625): IoU 0.0625 / 0.25 = 0.25 with the object;
    # box 1 is (0.12, 0.12, 0.28, 0.48): IoU 0.0069 / 0.3007 = 0.023; box 0 is responsible
    close(pred.corners()[0, 0, 0], [[0.375, 0.375, 0.625, 0.625], [0.12, 0.12, 0.28, 0.48]])
    obj = torch.tensor([[0.25, 0.25, 0.75, 0.75]])  # centre 0.5, 0.5, size 0.5 x 0.5, class 2
    target = assign(obj, torch.tensor([2]), pred.corners()[0], num_classes=2)
    losses = yolo_loss(pred, [target], lambda_coord=5.0, lambda_noobj=0.5)
    root = math.sqrt(0.5)
    assert losses["loss_coord"].item() == pytest.approx(5 * 2 * (0.5 - root) ** 2)  # 0.42893
    assert losses["loss_obj"].item() == pytest.approx((0.8 - 0.25) ** 2)  # 0.3025
    assert losses["loss_noobj"].item() == pytest.approx(0.5 * 0.3**2)  # 0.045
    assert losses["loss_class"].item() == pytest.approx(0.7**2 + 0.7**2)  # 0.98


def test_a_picture_without_objects_adds_only_no_object_loss_and_the_batch_is_averaged():
    one = hand_prediction()
    two = GridPrediction(*(torch.cat([v, v]) for v in (one.boxes, one.confidence, one.probs)))
    obj = torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    full = assign(obj, torch.tensor([2]), one.corners()[0], 2)
    empty = assign(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), one.corners()[0], 2)
    alone = yolo_loss(one, [full])
    both = yolo_loss(two, [full, empty])
    for key in ("loss_coord", "loss_obj", "loss_class"):
        assert both[key].item() == pytest.approx(alone[key].item() / 2)
    expected = (0.5 * 0.3**2 + 0.5 * (0.8**2 + 0.3**2)) / 2
    assert both["loss_noobj"].item() == pytest.approx(expected)


def test_letterbox_keeps_the_aspect_and_moves_boxes_both_ways():
    image = torch.rand(3, 50, 100)  # H x W: the width is the long side
    canvas, place = letterbox(image, 64)
    assert canvas.shape == (3, 64, 64) and place.scale == pytest.approx(0.64)
    assert (place.left, place.top) == (0, 16)  # 100 x 50 -> 64 x 32, centred: bands of 16
    assert torch.all(canvas[:, :16] == FILL) and torch.all(canvas[:, 48:] == FILL)
    assert not torch.all(canvas[:, 16:48] == FILL)
    boxes = torch.tensor([[10.0, 5.0, 60.0, 45.0], [0.0, 0.0, 100.0, 50.0]])
    moved = letterbox_boxes(boxes, place)
    close(moved, [[6.4, 19.2, 38.4, 44.8], [0.0, 16.0, 64.0, 48.0]])
    close(unletterbox_boxes(moved, place), boxes.tolist())
    # a box reaching into a band is clipped to the picture on the way back
    back = unletterbox_boxes(torch.tensor([[-5.0, 2.0, 70.0, 60.0]]), place)
    close(back, [[0.0, 0.0, 100.0, 50.0]])


def test_letterbox_of_a_tall_picture_pads_left_and_right():
    canvas, place = letterbox(torch.ones(3, 80, 20), 40)
    assert (place.left, place.top, place.scale) == (15, 0, 0.5)
    assert torch.all(canvas[:, :, 15:25] == 1.0) and torch.all(canvas[:, :, :15] == FILL)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_keeps_what_torchvision_keeps(threshold):
    g = torch.Generator().manual_seed(int(threshold * 10))
    xy = torch.rand(300, 2, generator=g) * 100
    wh = torch.rand(300, 2, generator=g) * 30 + 1
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(300, generator=g)
    labels = torch.randint(0, 3, (300,), generator=g)
    ours = nms(boxes, scores, labels, threshold)
    theirs = batched_nms(boxes, scores, labels, threshold)
    assert ours.tolist() == theirs.tolist()
    assert 20 < len(ours) < 300  # the test set does overlap, and not everything


def test_nms_of_nothing():
    nothing = torch.zeros(0, dtype=torch.int64)
    assert nms(torch.zeros(0, 4), torch.zeros(0), nothing, 0.5).numel() == 0


def tiny_yolo(**kwargs):
    return yolo(get_model("resnet18", num_classes=10), num_classes=3, **(SMALL | kwargs))


def test_detect_scores_thresholds_and_maps_back_to_the_picture():
    net = tiny_yolo(grid=2, boxes_per_cell=1, score_threshold=0.1, max_detections=10)
    boxes = torch.zeros(1, 2, 2, 1, 4)
    boxes[0, 0, 1, 0] = torch.tensor([0.5, 0.9, 0.25, 0.25])  # row 0, column 1; 1/16 a side
    confidence = torch.zeros(1, 2, 2, 1)
    confidence[0, 0, 1, 0] = 0.9
    probs = torch.full((1, 2, 2, 2), 0.5)
    probs[0, 0, 1] = torch.tensor([0.2, 0.8])
    _, place = letterbox(torch.zeros(3, 64, 128), 64)  # W 128, H 64: scale 0.5, bands of 16
    found = net.detect(GridPrediction(boxes, confidence, probs), [place])[0]
    # class-specific scores 0.9 x 0.8 and 0.9 x 0.2; the other cells' confidence is 0
    assert found["labels"].tolist() == [2, 1]
    assert found["scores"].tolist() == pytest.approx([0.72, 0.18])
    # on the 64 canvas: centre (48, 28.8), 4 pixels a side; on the picture: x2, minus the band
    expected = [92.0, (26.8 - 16) * 2, 100.0, (30.8 - 16) * 2]
    assert found["boxes"][0].tolist() == pytest.approx(expected)
    net.max_detections = 1
    pred = GridPrediction(boxes, confidence, probs)
    assert net.detect(pred, [place])[0]["labels"].tolist() == [2]
    net.score_threshold = 0.75
    assert len(net.detect(pred, [place])[0]["boxes"]) == 0


@pytest.mark.parametrize(
    ("backbone", "extra", "head"),
    [
        ("resnet18", {}, {}),
        ("resnet18", {}, {"fc_hidden": None, "drop_stages": 1}),
        ("resnet20", {}, {"fc_hidden": None}),
        ("vgg11", {"small_input": True}, {}),
        ("alexnet", {}, {}),
    ],
)
def test_train_losses_and_eval_detections_on_backbones(backbone, extra, head):
    net = yolo(get_model(backbone, num_classes=10, **extra), num_classes=3, **(SMALL | head))
    assert net.task == "detection"
    images = [torch.rand(3, 48, 80), torch.rand(3, 64, 64)]  # pictures of their own sizes
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 40.0, 40.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    net.train()
    losses = net(images, targets)
    assert set(losses) == LOSSES and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    net.eval()
    found = net(images)
    assert len(found) == 2
    for f, image in zip(found, images, strict=True):
        assert set(f) == {"boxes", "labels", "scores"}
        height, width = image.shape[-2:]
        assert torch.all(f["boxes"][:, 2] <= width) and torch.all(f["boxes"][:, 3] <= height)
        assert torch.all((f["labels"] >= 1) & (f["labels"] <= 2))
        assert len(f["boxes"]) <= 100


def test_trainable_layers_freezes_early_stages():
    net = tiny_yolo(trainable_layers=1)
    frozen = [n for n, p in net.body.named_parameters() if not p.requires_grad]
    assert frozen and not any(n.startswith("layer4") for n in frozen)
    assert all(p.requires_grad for p in net.fc.parameters())


def test_training_mode_needs_targets_and_grey_data_is_refused():
    net = tiny_yolo().train()
    with pytest.raises(ValueError, match="needs the targets"):
        net([torch.rand(3, 32, 32)])
    with pytest.raises(UserError, match="RGB"):
        yolo(get_model("resnet18", num_classes=10), num_classes=3, in_channels=1)


@pytest.mark.slow  # 25 steps of a ResNet-18 YOLO
def test_a_short_training_lowers_the_loss_on_a_few_shapes():
    from cnnlab.data.shapes import ShapesDetectionDataModule

    torch.manual_seed(0)
    dm = ShapesDetectionDataModule(num_train=4, num_val=1, num_test=1, image_size=64, augment=False)
    dm.setup()
    images, targets = zip(*(dm.train_set[i] for i in range(4)), strict=True)
    net = yolo(get_model("resnet18", num_classes=10), dm.num_classes, **SMALL, dropout=0.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    first = None
    for _ in range(25):
        loss = sum(net(list(images), list(targets)).values())
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_the_convolutional_head_predicts_each_cell_from_its_place():
    # ResNet-18 without layer4: stride 16, so a 64-pixel square gives a 4 x 4 map, one a cell
    net = tiny_yolo(fc_hidden=None, drop_stages=1)
    assert isinstance(net.fc, torch.nn.Conv2d) and net.fc.out_channels == 5 * 2 + 2
    assert "layer4" not in dict(net.body.named_children())
    raw = net.outputs(torch.zeros(2, 3, 64, 64))
    assert raw.shape == (2, 4, 4, 12)
    # a change in one corner of the picture moves the cells whose features see it, and not the
    # far corner's (ResNet-18's layer3 sees about 200 pixels; the corners are 240 apart)
    wide = tiny_yolo(fc_hidden=None, drop_stages=1, image_size=256, grid=16).eval()
    x = torch.zeros(1, 3, 256, 256)
    y = x.clone()
    y[..., :8, :8] = 1.0
    changed = (wide.outputs(x) - wide.outputs(y)).abs().sum(-1)[0] > 0
    assert changed[0, 0] and not changed[15, 15]


def test_the_convolutional_head_refuses_a_map_smaller_than_the_grid():
    with pytest.raises(UserError, match="only 2 x 2.*model.drop_stages=1"):
        tiny_yolo(fc_hidden=None)  # stride 32: a 2 x 2 map for a 4 x 4 grid
    with pytest.raises(UserError, match="model.drop_stages=5.*5 stages: choose 0 to 4"):
        tiny_yolo(drop_stages=5)


def test_the_paper_config_has_the_papers_sizes(make_cfg):
    model = make_cfg(["data=shapes_detection", "model=yolo_paper"]).model
    paper = dict(image_size=448, grid=7, boxes_per_cell=2, head_convs=4, head_channels=1024)
    assert {k: model[k] for k in paper} == paper
    assert model.fc_hidden == 4096 and model.dropout == 0.5 and model.drop_stages == 0
    assert not model.head_batchnorm and model.backbone._target_.endswith("resnet18")
