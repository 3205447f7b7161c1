"""R-CNN's box regression targets, proposal labelling and sampling, the multi-task loss and the
decoding into detections, on hand-made boxes."""

import math

import pytest
import torch

from cnnlab.models.box_coding import decode, encode
from cnnlab.models.region_heads import (
    RegionSettings,
    Sampled,
    detect_regions,
    label_regions,
    region_loss,
    sample_regions,
    sample_training_regions,
)


def test_regression_targets_by_hand_and_back():
    proposal = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # centre (20, 40), 20 x 40
    box = torch.tensor([[12.0, 16.0, 52.0, 56.0]])  # centre (32, 36), 40 x 40
    # dx = (32 - 20) / 20, dy = (36 - 40) / 40, dw = log(40 / 20), dh = log(40 / 40); x weights
    expected = [10 * 0.6, 10 * -0.1, 5 * math.log(2.0), 0.0]
    assert encode(proposal, box)[0].tolist() == pytest.approx(expected)
    assert decode(proposal, encode(proposal, box))[0].tolist() == pytest.approx(box[0].tolist())


def test_decoding_random_targets_inverts_encoding():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 100
    proposals = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=g) * 50], 1)
    xy = torch.rand(50, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=g) * 50], 1)
    torch.testing.assert_close(decode(proposals, encode(proposals, boxes)), boxes)
    # per-class offsets (K, C, 4) decode every class's box of each proposal
    per_class = encode(proposals, boxes)[:, None].repeat(1, 3, 1)
    torch.testing.assert_close(decode(proposals, per_class)[:, 2], boxes)


def test_proposals_are_labelled_by_their_best_overlap():
    truth = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]])
    labels = torch.tensor([2, 1])
    rois = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # the first box itself: class 2
            [0.0, 0.0, 10.0, 15.0],  # IoU 100 / 150 = 0.67 with the first: class 2
            [20.0, 20.0, 40.0, 50.0],  # IoU 400 / 600 = 0.67 with the second: class 1
            [0.0, 0.0, 10.0, 30.0],  # IoU 100 / 300 = 0.33: background
            [50.0, 50.0, 60.0, 60.0],  # touches nothing: background
        ]
    )
    label, matched = label_regions(rois, truth, labels, fg_iou=0.5, bg_iou=0.5)
    assert label.tolist() == [2, 2, 1, 0, 0]
    assert matched[2].tolist() == truth[1].tolist()
    # with a gap between the thresholds, the regions inside it are neither (-1)
    assert label_regions(rois, truth, labels, fg_iou=0.7, bg_iou=0.3)[0].tolist() == [
        2,
        -1,
        -1,
        -1,
        0,
    ]
    none, _ = label_regions(rois, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 0.5, 0.5)
    assert none.tolist() == [0] * 5


def test_sampling_keeps_the_foreground_fraction():
    torch.manual_seed(0)
    labels = torch.tensor([1] * 30 + [0] * 200 + [-1] * 10)
    keep = sample_regions(labels, count=64, fg_fraction=0.25)
    assert len(keep) == 64 and (labels[keep] > 0).sum() == 16 and (labels[keep] == 0).sum() == 48
    assert len(set(keep.tolist())) == 64  # drawn without replacement
    # few objects: all of them, then background fills the rest; ignored regions never drawn
    few = sample_regions(torch.tensor([1] * 3 + [0] * 100 + [-1] * 50), 64, 0.25)
    assert len(few) == 64 and (few < 3).sum() == 3 and (few >= 103).sum() == 0


def test_training_regions_include_the_true_boxes():
    torch.manual_seed(0)
    target = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([3])}
    proposals = torch.tensor([[50.0, 50.0, 60.0, 60.0], [40.0, 0.0, 60.0, 20.0]])  # background
    sampled = sample_training_regions([proposals], [target], RegionSettings(rois_per_image=8))
    assert sorted(sampled.labels.tolist()) == [0, 0, 3]  # the true box is the one object
    fg = sampled.labels > 0
    assert sampled.box_targets[fg].abs().max() == 0  # it needs no moving


def test_the_multi_task_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # two regions, C + 1 = 3
    deltas = torch.zeros(2, 3, 4)
    deltas[1, 2] = torch.tensor([0.5, -2.0, 0.0, 0.0])  # region 1's offsets for its class 2
    sampled = Sampled([], torch.tensor([0, 2]), torch.zeros(2, 4))
    losses = region_loss(logits, deltas, sampled, lambda_box=1.0)
    ce0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    ce1 = -math.log(math.e / (math.e + 2))
    assert losses["loss_classifier"].item() == pytest.approx((ce0 + ce1) / 2)
    # smooth L1: 0.5 * 0.5^2 below 1, |-2| - 0.5 above; summed, over the 2 sampled regions
    assert losses["loss_box_reg"].item() == pytest.approx((0.125 + 1.5) / 2)


def test_detections_are_moved_clipped_thresholded_and_suppressed():
    rois = [
        torch.tensor([[10.0, 10.0, 30.0, 30.0], [12.0, 10.0, 32.0, 30.0], [0.0, 0.0, 8.0, 8.0]])
    ]
    logits = torch.log(torch.tensor([[0.1, 0.9, 0.0001], [0.2, 0.8, 0.0001], [0.99, 0.005, 0.005]]))
    deltas = torch.zeros(3, 3, 4)
    deltas[0, 1] = encode(rois[0][:1], torch.tensor([[15.0, 10.0, 35.0, 30.0]]))[0]
    settings = RegionSettings(score_threshold=0.05, nms_iou=0.5)
    found = detect_regions(logits, deltas, rois, [(28, 40)], settings)[0]
    # region 0, moved 5 px right and clipped to the 28-pixel height, beats region 1 (same class,
    # IoU 0.6 with it); region 2 is background
    assert found["labels"].tolist() == [1]
    assert found["scores"].tolist() == pytest.approx([0.9], rel=1e-3)
    assert found["boxes"][0].tolist() == pytest.approx([15.0, 10.0, 35.0, 28.0], abs=1e-4)
