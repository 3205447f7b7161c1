"""The report's detection sections on a detector whose answers are fixed, so that every count,
AP and gallery caption has a known value; and the report's threshold settings."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from cnnlab.errors import UserError
from cnnlab.report.analysis import Analysis
from cnnlab.report.detection import add_detection
from cnnlab.report.settings import ReportSettings, report_settings

NAMES = ["circle", "square"]  # labels 1 and 2; the background is 0


def boxes(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


# Two 64x64 pictures. The first: a circle found, a square taken for a circle, a square where
# there is nothing. The second: a square found and found again (a duplicate), a circle whose
# only detection scores under the threshold (missed).
TARGETS = [
    {"boxes": boxes([0, 0, 20, 20], [30, 30, 60, 60]), "labels": torch.tensor([1, 2])},
    {"boxes": boxes([5, 5, 25, 25], [30, 30, 50, 50]), "labels": torch.tensor([2, 1])},
]
PREDS = [
    {
        "boxes": boxes([0, 0, 20, 20], [30, 30, 60, 60], [40, 0, 60, 10]),
        "labels": torch.tensor([1, 1, 2]),
        "scores": torch.tensor([0.9, 0.8, 0.7]),
    },
    {
        "boxes": boxes([5, 5, 25, 25], [5, 5, 25, 26], [30, 30, 50, 50]),
        "labels": torch.tensor([2, 2, 1]),
        "scores": torch.tensor([0.95, 0.6, 0.3]),
    },
]


class FixedDetector(nn.Module):
    """Answers PREDS for the pictures in order, whatever they show."""

    def forward(self, images):
        return [PREDS[int(image[0, 0, 0])] for image in images]


def fake_run():
    images = [torch.full((3, 64, 64), float(i)) for i in range(2)]  # the pixel says which
    loader = [(images[:1], TARGETS[:1]), (images[1:], TARGETS[1:])]
    module = SimpleNamespace(num_classes=3, net=FixedDetector())
    data = SimpleNamespace(class_names=NAMES, test_dataloader=lambda: loader)
    return SimpleNamespace(module=module, datamodule=data)


@pytest.fixture(scope="module")
def html() -> str:
    result = Analysis(checkpoint=Path("best-epoch003-map0.5000.ckpt"))
    add_detection(result, fake_run(), ReportSettings())
    assert result.test_images == 2
    return "".join(result.sections)


def cells(html: str, first: str) -> list[str]:
    row = re.search(rf"<tr><td>{first}</td>(.*?)</tr>", html).group(1)
    return re.findall(r"<td[^>]*>(.*?)</td>", row)


def test_per_class_ap_and_counts(html):
    # circle: 0.9 right, 0.8 on the square, 0.3 right: precision 1 up to recall 0.5, then 2/3;
    # COCO's 101-point interpolation gives (51 + 50 * 2/3) / 101 at every IoU (exact boxes).
    circle_ap = (51 + 50 * 2 / 3) / 101
    # square: 0.95 right, then two false ones; one of its two objects never found as a square.
    square_ap = 51 / 101
    circle, square = f"{circle_ap:.3f}", f"{square_ap:.3f}"
    # objects, AP, AP50, found, other class, missed, false
    assert cells(html, "circle") == ["2", circle, circle, "1", "0", "1", "1"]
    assert cells(html, "square") == ["2", square, square, "1", "1", "0", "2"]
    assert "IoU at least 0.5, score at least 0.5" in html


def test_sections_and_galleries(html):
    for title in (
        "Detection per class",
        "Precision-recall curves",
        "Detection confusion matrix",
        "Highest-scoring false detections",
        "Largest missed objects",
    ):
        assert f"<h2>{title}</h2>" in html
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    assert captions == [
        # false detections, highest score first
        "circle 0.80: a square (IoU 1.00)",
        "square 0.70: no object there",
        "square 0.60: a second detection of a square already found",
        # missed objects, largest first
        "square, 30x30 px: taken for a circle 0.80",
        "circle, 20x20 px: not found",
    ]
    assert len(re.findall(r'<img src="data:image/png', html)) == 2 + 5  # curves, matrix, tiles


def test_thresholds_change_the_counts():
    result = Analysis(checkpoint=Path("best.ckpt"))
    add_detection(result, fake_run(), ReportSettings(score_threshold=0.2))
    html = "".join(result.sections)
    assert cells(html, "circle")[3:] == ["2", "0", "0", "1"]  # the 0.3 detection now counts
    assert "square 0.60" in html and "circle, 20x20 px" not in html


def test_settings_come_from_the_run_then_the_command_line():
    stored = OmegaConf.create({"report": {"iou_threshold": 0.6, "score_threshold": 0.4}})
    assert report_settings(OmegaConf.create({})) == ReportSettings()
    assert report_settings(stored) == ReportSettings(iou_threshold=0.6, score_threshold=0.4)
    given = report_settings(stored, ["report.iou_threshold=0.75"], max_images=9)
    assert given == ReportSettings(max_images=9, iou_threshold=0.75, score_threshold=0.4)
    with pytest.raises(UserError, match="report.iou_threshold=VALUE, report.score_threshold"):
        report_settings(stored, ["report.iou=0.7"])
    with pytest.raises(UserError, match="between 0 and 1"):
        report_settings(stored, ["report.score_threshold=1.5"])
