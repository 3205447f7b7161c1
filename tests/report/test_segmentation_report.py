"""The report's segmentation sections on hand-made masks: per-image mean IoU, the per-class IoU
table and the worst-image gallery, from a fake restored run (no training)."""

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.report.analysis import Analysis
from cnnlab.report.segmentation import add_segmentation, image_miou, segment_test_split
from cnnlab.report.settings import ReportSettings
from cnnlab.tasks.segmentation import iou_metric

X = 255  # ignored
NAMES = ["background", "circle", "square", "triangle"]  # no triangle anywhere
BG = [[0, 0, 0, 0], [0, 0, 0, 0]]
# (true mask, predicted mask) of the ten test images, 2 x 4 pixels each
PAIRS = [
    ([[0, 0, 1, 1], [0, 0, 1, 1]], [[0, 0, 0, 1], [0, 0, 0, 1]]),  # 0: (4/6 + 2/4) / 2 = 7/12
    ([[0, 0, 0, 0], [0, 2, 2, 0]], [[0, 0, 0, 0], [0, 2, 2, 0]]),  # 1: perfect
    ([[0, 0, X, X], [0, 0, 0, 0]], [[0, 0, 1, 1], [0, 0, 0, 2]]),  # 2: (5/6 + 0) / 2 = 5/12
    ([[1, 1, 0, 0], [1, 1, 0, 0]], [[1, 1, 0, 0], [1, 1, 0, 0]]),  # 3: perfect
    ([[2, 2, 2, 2], [0, 0, 0, 0]], [[1, 1, 2, 2], [0, 0, 0, 0]]),  # 4: (1 + 0 + 2/4) / 3 = 1/2
    (BG, BG),  # 5
    ([[X] * 4, [X] * 4], [[3] * 4, [3] * 4]),  # 6: nothing labelled, left out of the ranking
    (BG, BG),  # 7
    (BG, BG),  # 8
    (BG, BG),  # 9
]


class Oracle(nn.Module):
    """Scores that are the one-hot of the prediction written into each image's first channel,
    returned with an auxiliary output as torchvision's segmenters do."""

    def forward(self, images: torch.Tensor):
        scores = F.one_hot(images[:, 0].long(), len(NAMES)).permute(0, 3, 1, 2).float()
        return scores, torch.zeros_like(scores)


def fake_run(class_names=NAMES, batch_sizes=(4, 4, 2)) -> SimpleNamespace:
    masks = torch.tensor([t for t, _ in PAIRS])
    images = torch.tensor([p for _, p in PAIRS], dtype=torch.float32)[:, None].repeat(1, 3, 1, 1)
    batches, start = [], 0
    for size in batch_sizes:
        batches.append((images[start : start + size], masks[start : start + size]))
        start += size
    dm = SimpleNamespace(test_dataloader=lambda: iter(batches))
    if class_names is not None:
        dm.class_names = class_names
    return SimpleNamespace(module=Oracle().eval(), datamodule=dm)


def test_image_miou_averages_the_classes_in_truth_or_prediction_ignoring_255():
    for i, expected in [(0, 7 / 12), (1, 1.0), (2, 5 / 12), (4, 1 / 2)]:
        true, pred = (torch.tensor(m) for m in PAIRS[i])
        assert image_miou(true, pred, 4) == pytest.approx(expected)
        assert image_miou(true, pred) == pytest.approx(expected)  # classes from the ids seen
        metric = iou_metric(4)  # test/miou's definition, on this one image
        metric.update(pred[None], true[None])
        assert float(metric.compute()) == pytest.approx(expected)
    # the circle predicted on ignored pixels only does not count; the square predicted on a
    # background pixel does, with IoU 0
    true, pred = (torch.tensor(m) for m in PAIRS[2])
    assert image_miou(true, torch.where(true == X, 0, pred), 4) == pytest.approx(5 / 12)
    assert image_miou(true, torch.where(pred == 2, 0, pred), 4) == 1.0
    assert math.isnan(image_miou(*(torch.tensor(m) for m in PAIRS[6]), 4))


def test_test_split_counts_match_a_hand_computation():
    found = segment_test_split(Oracle(), fake_run().datamodule.test_dataloader())
    # rows true, columns predicted, image 6 and the ignored pixels of image 2 left out
    expected = torch.zeros(4, 4, dtype=torch.int64)
    expected[0, 0], expected[0, 2], expected[1, 0] = 55, 1, 2
    expected[1, 1], expected[2, 1], expected[2, 2] = 6, 2, 4
    assert torch.equal(found.confusion, expected)
    ious = [55 / 58, 6 / 10, 4 / 7]
    assert found.class_iou[:3].tolist() == pytest.approx(ious)
    assert found.present.tolist() == [True, True, True, False]
    assert found.miou == pytest.approx(sum(ious) / 3)
    assert found.pixel_accuracy == pytest.approx(65 / 70)
    assert found.pixel_share.tolist() == pytest.approx([56 / 70, 8 / 70, 6 / 70, 0])
    assert found.containing.tolist() == [9, 2, 2, 0]
    assert found.images == 10
    assert [w.index for w in found.worst] == [2, 4, 0, 1, 3, 5, 7, 8]  # ties: earlier first
    assert all(w.image.shape == (3, 2, 4) and w.image.dtype == torch.uint8 for w in found.worst)


def test_add_segmentation_writes_the_iou_table_and_the_worst_images():
    result = Analysis(checkpoint=Path("best.ckpt"))
    add_segmentation(result, fake_run(), ReportSettings())
    assert result.test_images == 10 and result.notes == []
    iou, worst = result.sections
    assert iou.startswith("<h2>Per-class IoU</h2>") and "best.ckpt" in iou
    cells = re.findall(r"<tr><td>(\w+)</td>" + r'<td class="num">([^<]*)</td>' * 3, iou)
    assert cells == [
        ("background", "0.948", "80.00%", "9"),
        ("circle", "0.600", "11.43%", "2"),
        ("square", "0.571", "8.57%", "2"),
        ("triangle", "—", "0.00%", "0"),
    ]
    miou = (55 / 58 + 0.6 + 4 / 7) / 3
    assert f"Mean IoU {miou:.4f}" in iou and f"pixel accuracy {65 / 70:.4f}" in iou
    assert worst.startswith("<h2>Worst test images</h2>") and '<div class="gallery">' in worst
    assert worst.count("<figure>") == 8 and worst.count("<img ") == 8
    captions = re.findall(r"<figcaption>image #(\d+), mean IoU ([\d.]+)<br>([^<]*)<", worst)
    assert captions == [
        ("2", "0.42", "background taken for square in 1 pixel"),
        ("4", "0.50", "square taken for circle in 2 pixels"),
        ("0", "0.58", "circle taken for background in 2 pixels"),
        *((str(i), "1.00", "no pixel wrong") for i in (1, 3, 5, 7, 8)),
    ]


def test_max_images_and_class_ids_without_names():
    result = Analysis(checkpoint=Path("best.ckpt"))
    add_segmentation(result, fake_run(class_names=None), ReportSettings(max_images=3))
    assert result.test_images == 3
    iou, worst = result.sections
    assert "on the 3 test images" in iou
    assert re.findall(r"<tr><td>(\w+)</td><td class=\"num\">([^<]*)</td>", iou) == [
        ("0", f"{15 / 18:.3f}"),  # 15 hits of 16 true and 17 predicted pixels
        ("1", "0.500"),
        ("2", f"{2 / 3:.3f}"),
        ("3", "—"),
    ]
    assert re.findall(r"<figcaption>image #(\d+),", worst) == ["2", "0", "1"]
    assert worst.count("<figure>") == 3


def test_an_empty_test_split_leaves_a_note():
    run = fake_run(batch_sizes=())
    result = Analysis(checkpoint=Path("best.ckpt"))
    add_segmentation(result, run, ReportSettings())
    assert result.sections == [] and result.test_images == 0
    assert "no images" in result.notes[0]
