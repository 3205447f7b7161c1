"""The detection confusion matrix: each case of the matching on hand-made boxes (xyxy)."""

import torch

from cnnlab.tasks.detection_matching import confusion_counts, match_detections

A, B, C, CROWD = [0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 80, 80]
TRUTH = {  # objects 0..3: A of class 1, B and C of class 2, a crowd of class 1
    "boxes": torch.tensor([A, B, C, CROWD], dtype=torch.float32),
    "labels": torch.tensor([1, 2, 2, 1]),
    "iscrowd": torch.tensor([0, 0, 0, 1]),
}
PRED = {  # detections 0..4
    "boxes": torch.tensor([A, A, B, C, CROWD], dtype=torch.float32),
    "labels": torch.tensor([1, 1, 1, 2, 1]),
    "scores": torch.tensor([0.9, 0.8, 0.7, 0.3, 0.6]),
}


def test_each_detection_and_object_has_its_one_answer():
    """0 finds A (same class); 1, a duplicate on A, is false; 2 finds B but calls it class 1;
    3 scores too low to count, so C is missed; 4 lies on the crowd: neither false nor a find."""
    matching = match_detections(PRED, TRUTH, iou_threshold=0.5, score_threshold=0.5)
    assert matching.kept == [0, 1, 2, 4]  # by score, 3 dropped
    assert matching.pairs == [(0, 0), (1, 2)]  # same class first, then any class
    assert matching.missed == [2] and matching.false == [1]


def test_confusion_counts_rows_true_columns_detected_background_last():
    nothing_found = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "scores": torch.zeros(0),
    }
    no_objects = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    preds = [PRED, nothing_found, PRED]  # the last: detections on an empty picture, all false
    targets = [TRUTH, TRUTH, no_objects]
    matrix = confusion_counts(preds, targets, num_classes=3)
    expected = torch.tensor(
        [
            [1, 0, 1],  # class 1: A found as 1; then missed (the crowd is not)
            [1, 0, 3],  # class 2: B found as 1; C missed, then B and C missed
            [1 + 4, 0, 0],  # background: the duplicate, then the four kept detections (class 1)
        ]
    )
    assert matrix.dtype == torch.int64 and torch.equal(matrix, expected)
