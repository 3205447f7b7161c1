"""Predictions from an exported model alone: ``model.onnx`` (onnxruntime) or ``model.pt``
(TorchScript) with the ``model.json`` that cnnlab-export wrote beside it.

No checkpoint, no datamodule, no Lightning: ``model.json`` gives the task, the class names, the
input size and channels and the normalisation, from which the evaluation transform is rebuilt
(``cnnlab.data.transforms``), and the task's own predictor writes the same JSON and pictures as
from the checkpoint.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.data.transforms import SegmentationTransform, classification_transforms
from cnnlab.errors import UserError
from cnnlab.inference.export import DETECTION_OUTPUTS, onnx_runtime

PREDICTORS = {
    "classification": "cnnlab.inference.classification.classify_images",
    "segmentation": "cnnlab.inference.segmentation.segment_images",
    "detection": "cnnlab.inference.detection.detect_images",
}


def is_exported(path: str | Path) -> bool:
    return Path(str(path)).suffix in (".onnx", ".pt")


def read_description(model_path: Path) -> dict:
    """``model.json`` beside the exported file; a missing one is an error that says why."""
    path = model_path.with_name("model.json")
    if not path.is_file():
        raise UserError(
            f"{model_path} has no model.json beside it: predicting from an exported file needs "
            "the description cnnlab-export writes (task, classes, input size, normalisation). "
            "Export the checkpoint again with cnnlab-export, or predict from the checkpoint."
        )
    return json.loads(path.read_text())


class ExportedNet:
    """The exported file as a callable on float tensors (B, C, H, W), on the CPU."""

    device = torch.device("cpu")

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.suffix == ".onnx":
            ort = onnx_runtime()
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name
        else:
            self.module = torch.jit.load(str(path), map_location="cpu").eval()

    def __call__(self, x):
        if isinstance(x, list):  # a detector: one picture per call, torchvision's output rows
            return [self._detect(image) for image in x]
        x = x.detach().float().cpu().contiguous()
        if self.path.suffix == ".onnx":
            out = self.session.run(None, {self.input_name: x.numpy()})[0]
            return torch.from_numpy(out)
        with torch.no_grad():
            return self.module(x)

    def _detect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.session.run(None, {self.input_name: image.detach().float().cpu().numpy()})
        return {k: torch.from_numpy(v) for k, v in zip(DETECTION_OUTPUTS, out, strict=True)}

    def eval(self) -> "ExportedNet":
        return self


@dataclass
class ExportedData:
    """What the predictors ask of a datamodule, from ``model.json``."""

    task: str
    class_names: list[str] | None
    num_classes: int
    in_channels: int
    image_size: int | None
    mean: list[float]
    std: list[float]

    @classmethod
    def from_description(cls, info: dict) -> "ExportedData":
        inputs = info["input"]
        return cls(
            info["task"],
            info.get("class_names"),
            int(info["num_classes"]),
            int(inputs["channels"]),
            inputs.get("image_size"),
            list(info["mean"]),
            list(info["std"]),
        )

    def transforms(self, train: bool = False):
        if self.task == "segmentation":
            return SegmentationTransform(self.image_size, train=False)
        size = self.image_size
        return classification_transforms(
            train=False, image_size=size, native_size=size, mean=self.mean, std=self.std
        )


def load_exported(path: str | Path) -> tuple[ExportedNet, ExportedData]:
    """The exported network and its data description; tasks without a predictor refused."""
    path = Path(str(path))
    if not path.is_file():
        raise UserError(f"No exported model at {path}: give ckpt_path= a model.onnx or model.pt.")
    data = ExportedData.from_description(read_description(path))
    if data.task not in PREDICTORS:
        raise UserError(f"Predicting from an exported {data.task} model is not supported.")
    return ExportedNet(path), data
