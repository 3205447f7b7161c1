"""A trained network as a file that runs without cnnlab's training code: ONNX or TorchScript,
checked against PyTorch before it is kept, with ``model.json`` saying how to feed it.

``export_run`` takes a restored run (``cnnlab.factory.restore``): the network in eval mode on
the CPU, and the first batch of its test split as the example input. The exported file must
give the same outputs as the PyTorch network on that batch, within ``atol``; otherwise it is
refused (deleted) with the largest difference named. ``model.json`` holds the task, the class
names, the input's size and channels, the normalisation, the checkpoint and the opset.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import UserError

log = logging.getLogger("cnnlab")

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
DETECTION_OUTPUTS = ("boxes", "labels", "scores")  # an exported detector's outputs, in order
EXPORTABLE_TASKS = ("classification", "segmentation", "detection")
# detectors whose whole pipeline (proposals, box decoding, NMS) is torchvision's and traces into
# ONNX; the others are refused with the reason (``check_exportable``)
EXPORTABLE_DETECTORS = ("FasterRCNN",)


@dataclass(frozen=True)
class ExportSettings:
    """``export.*``: the ONNX opset, a batch axis of any size, the tolerance of the check."""

    opset: int = 18
    dynamic_batch: bool = True
    atol: float = 1e-4


class MainOutput(nn.Module):
    """The network with one tensor out: the logits (classification) or the score maps
    (segmentation); auxiliary outputs (GoogLeNet's, torchvision's FCN ``aux``) are dropped."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if isinstance(out, dict):
            return out["out"]
        return out[0] if isinstance(out, tuple | list) else out


class DetectionOutputs(nn.Module):
    """A torchvision-style detector as one image (3, H, W) in, (boxes, labels, scores) out."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor):
        found = self.net([image])[0]
        return found["boxes"], found["labels"], found["scores"]


def check_exportable(task: str, net: nn.Module, fmt: str) -> None:
    """Refuse, with the reason, what cannot be exported: detectors other than Faster R-CNN, and
    any detector as TorchScript."""
    if task != "detection":
        return
    kind = type(net).__name__
    if kind not in EXPORTABLE_DETECTORS:
        why = {
            "YOLOv1": "its box decoding and per-class NMS are cnnlab's own Python loops, which a "
            "traced graph would freeze to the example's boxes",
        }.get(kind, "it classifies Selective Search proposals made outside the network (OpenCV)")
        raise UserError(
            f"cnnlab-export cannot export this {kind} detector yet: {why}. Faster R-CNN "
            "(model=fasterrcnn and the fasterrcnn_* models) exports to ONNX."
        )
    if fmt != "onnx":
        raise UserError(
            "Detectors export as format=onnx only: tracing a detector for TorchScript would fix "
            "its number of boxes to the example's."
        )


def onnx_runtime():
    """onnxruntime, once onnx and onnxscript are known to be there; else the extra named."""
    try:
        import onnx  # noqa: F401  (torch's exporter writes through it)
        import onnxruntime
        import onnxscript  # noqa: F401  (torch 2.14's exporter needs it)
    except ImportError as e:
        raise UserError(
            f"format=onnx needs onnx, onnxscript and onnxruntime ({e.name} is missing): "
            "pip install 'cnnlab[export]'."
        ) from None
    return onnxruntime


def write_onnx(net: nn.Module, example: torch.Tensor, path: Path, settings: ExportSettings) -> None:
    """``net`` as ONNX at ``path`` (torch's dynamo exporter), batch axis dynamic when asked."""
    onnx_runtime()
    for name in ("onnx_ir", "onnxscript"):  # their INFO lines narrate every graph pass
        logging.getLogger(name).setLevel(logging.WARNING)
    shapes = ({0: torch.export.Dim("batch")},) if settings.dynamic_batch else None
    torch.onnx.export(
        net,
        (example,),
        str(path),
        dynamo=True,
        dynamic_shapes=shapes,
        opset_version=settings.opset,
        input_names=["images"],
        output_names=["outputs"],
        verbose=False,
    )


def write_detector_onnx(
    net: nn.Module, image: torch.Tensor, path: Path, settings: ExportSettings
) -> None:
    """A detector as ONNX through torch's TorchScript-based exporter, which carries
    torchvision's detection ops (RoIAlign, NMS) into the graph; any image size, any number of
    boxes out. One image per call."""
    onnx_runtime()
    axes = {"image": {1: "height", 2: "width"}} | {k: {0: "boxes"} for k in DETECTION_OUTPUTS}
    torch.onnx.export(
        DetectionOutputs(net).eval(),
        (image,),
        str(path),
        dynamo=False,
        opset_version=settings.opset,
        input_names=["image"],
        output_names=list(DETECTION_OUTPUTS),
        dynamic_axes=axes,
    )


def run_detector(path: Path, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ONNX detector's boxes, labels and scores for one image (3, H, W)."""
    ort = onnx_runtime()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"image": image.numpy()})
    return {k: torch.from_numpy(v) for k, v in zip(DETECTION_OUTPUTS, out, strict=True)}


def detection_difference(path: Path, net: nn.Module, images: list[torch.Tensor]) -> float:
    """The largest difference between the exported detector's and PyTorch's boxes (pixels) and
    scores, each PyTorch box matched to the exported box of its class with the highest IoU; a
    box without a match of IoU >= 0.5, or another number of boxes, is infinitely different."""
    from torchvision.ops import box_iou

    largest = 0.0
    for image in images:
        with torch.no_grad():
            ours = net([image])[0]
        theirs = run_detector(path, image)
        if len(theirs["boxes"]) != len(ours["boxes"]):
            return float("inf")
        if not len(ours["boxes"]):
            continue
        iou = box_iou(ours["boxes"], theirs["boxes"])
        iou[ours["labels"][:, None] != theirs["labels"][None, :]] = -1  # a class to its class
        best, match = iou.max(dim=1)
        if bool((best < 0.5).any()):
            return float("inf")
        boxes = (ours["boxes"] - theirs["boxes"][match]).abs().max()
        scores = (ours["scores"] - theirs["scores"][match]).abs().max()
        largest = max(largest, float(boxes), float(scores))
    return largest


def write_torchscript(net: nn.Module, example: torch.Tensor, path: Path) -> None:
    """``net`` traced on ``example`` and saved as TorchScript at ``path``."""
    with torch.no_grad():
        traced = torch.jit.trace(net, example, check_trace=False)
    traced.save(str(path))


def run_exported(path: Path, fmt: str, x: torch.Tensor) -> torch.Tensor:
    """The exported file's output for ``x``: onnxruntime for ONNX, torch.jit.load for
    TorchScript."""
    if fmt == "onnx":
        ort = onnx_runtime()
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    with torch.no_grad():
        return torch.jit.load(str(path))(x)


def largest_difference(path: Path, fmt: str, net: nn.Module, x: torch.Tensor) -> float:
    """max |exported(x) - net(x)|; a shape that differs is an error of its own."""
    with torch.no_grad():
        expected = net(x)
    got = run_exported(path, fmt, x)
    if got.shape != expected.shape:
        raise UserError(
            f"The exported {path.name} gives outputs of shape {tuple(got.shape)} for a batch of "
            f"{x.shape[0]}, PyTorch {tuple(expected.shape)}: the export is not kept."
        )
    return float((got - expected).abs().max())


def export_network(
    net: nn.Module,
    example,
    out_dir: Path,
    fmt: str,
    settings: ExportSettings,
    task: str = "classification",
) -> tuple[Path, float]:
    """Write ``net`` (eval mode, CPU) in ``fmt`` into ``out_dir`` and check it on ``example``
    (a batch tensor; for a detector, a list of images); return the file and the largest
    difference. Over ``settings.atol``: the file is deleted and a UserError names it."""
    if fmt not in FORMATS:
        raise UserError(f"format={fmt!r}: choose one of {', '.join(FORMATS)}.")
    check_exportable(task, net, fmt)
    path = out_dir / FORMATS[fmt]
    if task == "detection":
        write_detector_onnx(net, example[0], path, settings)
        diff = detection_difference(path, net, example)
    else:
        wrapped = MainOutput(net).eval()
        if fmt == "onnx":
            write_onnx(wrapped, example, path, settings)
        else:
            write_torchscript(wrapped, example, path)
        diff = largest_difference(path, fmt, wrapped, example)
    log.info(
        "%s: largest difference from PyTorch on %d test images: %.3g (export.atol=%g)",
        path.name,
        len(example),
        diff,
        settings.atol,
    )
    if not diff <= settings.atol:  # NaN fails too
        path.unlink(missing_ok=True)
        raise UserError(
            f"The exported {path.name} differs from the checkpoint's PyTorch model by up to "
            f"{diff:.3g} on the test split's first batch, more than export.atol="
            f"{settings.atol:g}: the export is not kept. Raise export.atol if that is close "
            "enough, or try format=torchscript."
        )
    return path, diff


def describe(
    task: str,
    names: list[str] | None,
    datamodule,
    example: torch.Tensor,
    checkpoint: str,
    fmt: str,
    settings: ExportSettings,
    diff: float,
) -> dict:
    """What ``model.json`` says: enough to feed the exported file without the checkpoint."""
    mean, std = normalisation(task, datamodule)
    first = example[0]  # one image of the batch, or the first of a detector's list
    channels, height, width = (int(v) for v in first.shape[-3:])
    return {
        "task": task,
        "format": fmt,
        "file": FORMATS[fmt],
        "class_names": names,
        "num_classes": int(datamodule.num_classes),
        "input": {
            "channels": channels,
            "height": height,
            "width": width,
            "image_size": getattr(datamodule, "image_size", None),
            "dynamic_batch": settings.dynamic_batch and task != "detection",
        },
        "mean": mean,
        "std": std,
        "checkpoint": str(checkpoint),
        "opset": settings.opset if fmt == "onnx" else None,
        "max_abs_diff": diff,
    }


def normalisation(task: str, datamodule) -> tuple[list[float], list[float]]:
    """The mean and std the inputs were normalised with in training (a detector normalises
    inside its own graph: none)."""
    if task == "classification":
        return datamodule._stats()
    if task == "detection":
        return [], []
    from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    return list(IMAGENET_MEAN), list(IMAGENET_STD)  # the segmentation transform's


def write_description(description: dict, out_dir: Path) -> Path:
    path = out_dir / "model.json"
    path.write_text(json.dumps(description, indent=1) + "\n")
    return path
