"""DetectionModule: losses and drawn predictions reach TensorBoard; its mAP is COCOeval's."""

import contextlib
import io

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

from cnnlab.callbacks.tensorboard_images import TensorBoardImages
from cnnlab.tasks.detection import DetectionModule, draw_detections, image_grid
from cnnlab.tasks.detection_matching import confusion_counts
from cnnlab.viz import classification as figures

LOSSES = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")


def collate(batch):
    return tuple(zip(*batch, strict=True))


def loader(samples: list, batch_size: int = 2) -> DataLoader:
    return DataLoader(samples, batch_size=batch_size, collate_fn=collate)


def adam(params):
    return torch.optim.Adam(params, lr=1e-4)


# Hand-made boxes: matches, a loose match (IoU 0.56), a wrong class, a miss, false positives,
# two classes, and an image with no ground truth at all. Boxes are xyxy.
TRUTH = [
    {"boxes": [[10, 10, 50, 50], [60, 60, 100, 100]], "labels": [1, 2]},
    {"boxes": [[0, 0, 30, 30], [40, 40, 80, 80]], "labels": [1, 1]},
    {"boxes": [], "labels": []},
]
PREDS = [
    {
        "boxes": [[12, 12, 50, 52], [60, 60, 90, 90], [70, 10, 90, 30]],
        "labels": [1, 2, 1],
        "scores": [0.9, 0.8, 0.7],
    },
    {"boxes": [[0, 0, 30, 30], [40, 40, 80, 80]], "labels": [1, 2], "scores": [0.6, 0.95]},
    {"boxes": [[5, 5, 25, 25], [30, 30, 60, 60]], "labels": [2, 1], "scores": [0.85, 0.3]},
]


def as_tensors(d: dict) -> dict:
    out = {"boxes": torch.tensor(d["boxes"], dtype=torch.float32).reshape(-1, 4)}
    out["labels"] = torch.tensor(d["labels"], dtype=torch.int64)
    if "scores" in d:
        out["scores"] = torch.tensor(d["scores"], dtype=torch.float32)
    return out


class FixedPredictions(nn.Module):
    """A stand-in detector that answers PREDS in order, whatever the images."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, images, targets=None):
        out = [as_tensors(PREDS[(self.calls + i) % len(PREDS)]) for i in range(len(images))]
        self.calls += len(images)
        return out


def xywh(box: list[float]) -> list[float]:
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def cocoeval_stats(category: int | None = None) -> list[float]:
    """map, map_50, map_75 by pycocotools run directly on TRUTH and PREDS."""
    boxes = [
        (i, box, label)
        for i, t in enumerate(TRUTH)
        for box, label in zip(t["boxes"], t["labels"], strict=True)
    ]
    annotations = [
        {
            "id": n,
            "image_id": i,
            "category_id": label,
            "bbox": xywh(box),
            "area": xywh(box)[2] * xywh(box)[3],
            "iscrowd": 0,
        }
        for n, (i, box, label) in enumerate(boxes, start=1)
    ]
    dataset = {
        "images": [{"id": i, "width": 120, "height": 120} for i in range(len(TRUTH))],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }
    results = [
        {"image_id": i, "category_id": label, "bbox": xywh(box), "score": score}
        for i, p in enumerate(PREDS)
        for box, label, score in zip(p["boxes"], p["labels"], p["scores"], strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        if category is not None:
            evaluator.params.catIds = [category]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats[:3]]


def cocoeval_per_class(category: int) -> tuple[float, float]:
    """pycocotools' AP (0.5:0.95) and AP_50 of one category for TRUTH and PREDS."""
    return tuple(cocoeval_stats(category)[:2])


def quiet_trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=kwargs.pop("logger", False),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_logged_map_equals_cocoeval():
    samples = [
        (torch.rand(3, 120, 120), {**as_tensors(t), "image_id": i}) for i, t in enumerate(TRUTH)
    ]
    module = DetectionModule(net=FixedPredictions(), optimizer=adam, num_logged_images=0)
    (val,) = quiet_trainer().validate(module, loader(samples), verbose=False)
    module.net.calls = 0
    (test,) = quiet_trainer().test(module, loader(samples), verbose=False)
    expected = cocoeval_stats()
    assert all(0 < e < 1 for e in expected) and len(set(expected)) == 3  # not trivial
    for stage, logged in (("val", val), ("test", test)):
        got = [logged[f"{stage}/{k}"] for k in ("map", "map_50", "map_75")]
        assert got == pytest.approx(expected, abs=1e-4)


def test_per_class_ap_equals_cocoeval_per_category():
    """test/map_<class> and test/map_50_<class>, the class named by its label without a
    datamodule's names; pycocotools with its catIds cut to the one category agrees."""
    samples = [
        (torch.rand(3, 120, 120), {**as_tensors(t), "image_id": i}) for i, t in enumerate(TRUTH)
    ]
    module = DetectionModule(net=FixedPredictions(), optimizer=adam, num_logged_images=0)
    (test,) = quiet_trainer().test(module, loader(samples), verbose=False)
    for category in (1, 2):
        ap, ap_50 = cocoeval_per_class(category)
        assert test[f"test/map_{category}"] == pytest.approx(ap, abs=1e-4)
        assert test[f"test/map_50_{category}"] == pytest.approx(ap_50, abs=1e-4)
    assert test["test/map_1"] != test["test/map_2"]  # not one number copied
    assert "val/map_1" not in test


class TinyShapes(pl.LightningDataModule):
    """Random 64x64 images with one or two boxes each, in the detection batch format."""

    class_names = ["circle", "square", "triangle"]
    num_classes = 4
    task = "detection"

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.samples = []
        for i in range(4):
            n = 1 + i % 2
            xy = torch.randint(0, 32, (n, 2), generator=g).float()
            wh = torch.randint(12, 30, (n, 2), generator=g).float()
            target = {
                "boxes": torch.cat([xy, xy + wh], dim=1),
                "labels": torch.randint(1, 4, (n,), generator=g),
                "image_id": i,
            }
            self.samples.append((torch.rand(3, 64, 64, generator=g), target))

    def train_dataloader(self):
        return loader(self.samples)

    def val_dataloader(self):
        return loader(self.samples)

    test_dataloader = val_dataloader  # the same pictures: the test is of the plumbing


def tiny_detector() -> nn.Module:
    return fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=4, min_size=64, max_size=64
    )


def test_one_step_of_a_real_detector_reaches_tensorboard(tmp_path):
    torch.manual_seed(0)
    module = DetectionModule(
        net=tiny_detector(), optimizer=adam, num_classes=4, label_smoothing=0.1
    )
    # fast_dev_run would swap the TensorBoard logger for a dummy: one batch of each instead.
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        logger=TensorBoardLogger(tmp_path, name="tb", version=""),
        callbacks=[TensorBoardImages(max_time_share=None)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data = TinyShapes()
    trainer.fit(module, datamodule=data)
    metrics = trainer.callback_metrics
    for name in ("train/loss", "lr", "val/map", "val/map_50", "val/map_75"):
        assert name in metrics, name
    parts = sum(float(metrics[f"train/{k}"]) for k in LOSSES)
    assert float(metrics["train/loss"]) == pytest.approx(parts, rel=1e-5)

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    for name in ("train/loss", *(f"train/{k}" for k in LOSSES), "lr", "val/map"):
        assert name in scalars, name
    assert {"val/predictions", "val/confusion_matrix"} <= set(events.Tags()["images"])
    assert "model/first_conv_filters" not in events.Tags()["images"]  # classification's alone
    (picture,) = events.Images("val/predictions")
    assert picture.width > 2 * 64 and picture.height >= 64  # a grid of the four images

    (test,) = trainer.test(module, datamodule=data, verbose=False)
    per_class = {f"test/{k}_{name}" for k in ("map", "map_50") for name in data.class_names}
    assert set(test) == {"test/map", "test/map_50", "test/map_75", "test/ms_per_image", *per_class}
    assert test["test/ms_per_image"] > 0  # per class by the datamodule's names: test/map_circle


def test_tensorboard_confusion_matrix_counts_the_whole_validation_set(tmp_path, monkeypatch):
    """TensorBoardImages adds up the batches' matchings (PREDS against TRUTH, in two batches)
    at its thresholds, and titles the figure with them; the labels name the background."""
    drawn = []

    def capture(matrix, names, title, counted):
        drawn.append((torch.as_tensor(matrix), names, title, counted))
        return torch.zeros(3, 8, 8, dtype=torch.uint8)

    monkeypatch.setattr(figures, "confusion_matrix_image", capture)
    samples = [(torch.rand(3, 120, 120), as_tensors(t)) for t in TRUTH]
    module = DetectionModule(net=FixedPredictions(), optimizer=adam, num_classes=3)
    pictures = TensorBoardImages(max_time_share=None, iou_threshold=0.6, score_threshold=0.4)
    logger = TensorBoardLogger(tmp_path, name="tb", version="")
    quiet_trainer(logger=logger, callbacks=[pictures]).validate(
        module, loader(samples), verbose=False
    )
    ((matrix, names, title, counted),) = drawn
    preds, truth = [as_tensors(p) for p in PREDS], [as_tensors(t) for t in TRUTH]
    assert torch.equal(matrix, confusion_counts(preds, truth, 3, 0.6, 0.4))
    assert matrix.sum() == 4 + int(matrix[2].sum()) and matrix[2].sum() > 0  # objects, false ones
    assert names == ["1", "2", "background"] and counted == "objects and false detections"
    assert title == "epoch 0, IoU>=0.6, score>=0.4"


def test_drawing_marks_boxes_and_pads_a_grid():
    image = torch.zeros(3, 40, 60)
    drawn = draw_detections(
        image,
        torch.tensor([[5.0, 5.0, 30.0, 30.0]]),
        torch.tensor([2]),
        torch.tensor([0.87]),
        ["cat", "dog"],
    )
    assert drawn.dtype == torch.uint8 and drawn.shape == (3, 40, 60)
    assert drawn[0, 5, 5:30].max() == 255 and drawn[1, 5, 5:30].max() == 0  # a red line
    assert draw_detections(image, torch.zeros(0, 4), torch.zeros(0)).sum() == 0
    grid = image_grid([drawn, torch.zeros(3, 50, 20, dtype=torch.uint8)])
    assert grid.shape == (3, 50 + 4, 2 * 60 + 6)
