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
EXPORTABLE_TASKS = ("classification", "segmentation")


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


def _onnx_modules():
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
    _onnx_modules()
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


def write_torchscript(net: nn.Module, example: torch.Tensor, path: Path) -> None:
    """``net`` traced on ``example`` and saved as TorchScript at ``path``."""
    with torch.no_grad():
        traced = torch.jit.trace(net, example, check_trace=False)
    traced.save(str(path))


def run_exported(path: Path, fmt: str, x: torch.Tensor) -> torch.Tensor:
    """The exported file's output for ``x``: onnxruntime for ONNX, torch.jit.load for
    TorchScript."""
    if fmt == "onnx":
        ort = _onnx_modules()
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
    net: nn.Module, example: torch.Tensor, out_dir: Path, fmt: str, settings: ExportSettings
) -> tuple[Path, float]:
    """Write ``net`` (eval mode, CPU) in ``fmt`` into ``out_dir`` and check it on ``example``;
    return the file and the largest difference. Over ``settings.atol``: the file is deleted
    and a UserError names the difference."""
    if fmt not in FORMATS:
        raise UserError(f"format={fmt!r}: choose one of {', '.join(FORMATS)}.")
    wrapped = MainOutput(net).eval()
    path = out_dir / FORMATS[fmt]
    if fmt == "onnx":
        write_onnx(wrapped, example, path, settings)
    else:
        write_torchscript(wrapped, example, path)
    diff = largest_difference(path, fmt, wrapped, example)
    log.info(
        "%s: largest difference from PyTorch on %d test images: %.3g (export.atol=%g)",
        path.name,
        example.shape[0],
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
    return {
        "task": task,
        "format": fmt,
        "file": FORMATS[fmt],
        "class_names": names,
        "num_classes": int(datamodule.num_classes),
        "input": {
            "channels": int(example.shape[1]),
            "height": int(example.shape[2]),
            "width": int(example.shape[3]),
            "image_size": getattr(datamodule, "image_size", None),
            "dynamic_batch": settings.dynamic_batch,
        },
        "mean": mean,
        "std": std,
        "checkpoint": str(checkpoint),
        "opset": settings.opset if fmt == "onnx" else None,
        "max_abs_diff": diff,
    }


def normalisation(task: str, datamodule) -> tuple[list[float], list[float]]:
    """The mean and std the inputs were normalised with in training."""
    if task == "classification":
        return datamodule._stats()
    from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    return list(IMAGENET_MEAN), list(IMAGENET_STD)  # the segmentation transform's


def write_description(description: dict, out_dir: Path) -> Path:
    path = out_dir / "model.json"
    path.write_text(json.dumps(description, indent=1) + "\n")
    return path
