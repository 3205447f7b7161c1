"""The report's per-class scores, derived from the confusion matrix, against scikit-learn and
against the torchmetrics averages that test/balanced_acc and test/f1_macro are logged with."""

import re

import pytest
import torch
from sklearn.metrics import f1_score, precision_score, recall_score
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from cnnlab.report.classification import per_class_table
from cnnlab.report.classifier_results import ClassifierResults

# class 3 has no test images but is answered once; class 4 is neither present nor answered
LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 0])
ANSWERS = torch.tensor([0, 0, 1, 0, 1, 1, 2, 2, 0, 3])


def tally() -> ClassifierResults:
    confusion = torch.bincount(LABELS * 5 + ANSWERS, minlength=25).view(5, 5)
    return ClassifierResults(confusion, images=len(LABELS))


def test_per_class_scores_are_scikit_learns():
    result, present = tally(), [0, 1, 2]
    for ours, theirs in (
        (result.per_class_recall, recall_score),
        (result.per_class_precision, precision_score),
        (result.per_class_f1, f1_score),
    ):
        expected = theirs(LABELS, ANSWERS, labels=present, average=None, zero_division=0)
        assert ours[present].tolist() == pytest.approx(expected.tolist())
    assert result.per_class_recall[3].isnan() and result.per_class_precision[3] == 0
    assert result.per_class_f1[3] == 0 and result.per_class_f1[4].isnan()


def test_means_match_the_logged_test_metrics():
    result = tally()
    quiet = dict(num_classes=5, average="macro")
    assert result.balanced_accuracy == pytest.approx(
        MulticlassAccuracy(**quiet)(ANSWERS, LABELS).item()
    )
    assert result.macro_f1 == pytest.approx(MulticlassF1Score(**quiet)(ANSWERS, LABELS).item())
    assert result.accuracy == pytest.approx(0.6)


def test_per_class_table_has_recall_precision_f1():
    html = per_class_table(tally(), ["a", "b", "c", "d", "e"])
    for column in ("recall", "precision", "F1", "images"):
        assert f"<th>{column}</th>" in html
    cells = re.sub(r"<td[^>]*>", "<td>", html)
    assert "<td>a</td><td>0.600</td><td>0.750</td><td>0.667</td><td>5</td>" in cells
    assert "<td>d</td><td>–</td><td>0.000</td><td>0.000</td><td>0</td>" in cells  # no images
    assert "nan" not in cells
