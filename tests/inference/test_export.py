"""cnnlab-export: a digits LeNet and a shapes FCN as ONNX and TorchScript, checked against
PyTorch, with model.json; any batch size; a failed check and a missing extra refused."""

import json

import onnxruntime as ort
import pytest
import torch

from cnnlab.cli.export import export
from cnnlab.errors import UserError
from cnnlab.factory.restore import restore

pytestmark = pytest.mark.slow  # torch's ONNX exporter takes 3 to 5 s a network


def exported(ckpt, make_cfg, tmp_path, *overrides):
    cfg = make_cfg([f"ckpt_path={ckpt}", *overrides], "export", tmp_path / "export")
    return export(cfg)


@pytest.fixture(scope="module")
def digits_onnx(digits_checkpoint, tmp_path_factory):
    """The digits LeNet exported once as model.onnx, for the tests that only read it."""
    from composing import compose_run

    out = tmp_path_factory.mktemp("onnx")
    return export(compose_run([f"ckpt_path={digits_checkpoint}"], "export", out, out / "data"))


def onnx_outputs(path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def test_classifier_to_onnx_with_its_description(digits_checkpoint, digits_onnx):
    path = digits_onnx
    assert path.name == "model.onnx"
    info = json.loads((path.parent / "model.json").read_text())
    assert info["task"] == "classification" and info["format"] == "onnx"
    assert info["class_names"] == [str(d) for d in range(10)] and info["num_classes"] == 10
    assert info["input"] == {
        "channels": 1, "height": 32, "width": 32, "image_size": 32, "dynamic_batch": True,
    }  # fmt: skip
    assert info["mean"] == [0.3056] and info["std"] == [0.3237]
    assert info["checkpoint"] == str(digits_checkpoint) and info["opset"] == 18
    assert 0 <= info["max_abs_diff"] <= 1e-4
    net = restore(digits_checkpoint).module.net.eval()
    for batch in (1, 3):  # the batch axis is dynamic
        x = torch.randn(batch, 1, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(onnx_outputs(path, x), net(x), rtol=0, atol=1e-4)


def test_classifier_to_torchscript(digits_checkpoint, make_cfg, tmp_path):
    path = exported(digits_checkpoint, make_cfg, tmp_path, "format=torchscript")
    assert (
        path.name == "model.pt"
        and json.loads((path.parent / "model.json").read_text())["format"] == "torchscript"
    )
    net = restore(digits_checkpoint).module.net.eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(path))(x), net(x), rtol=0, atol=1e-5)


def test_segmenter_to_onnx_gives_maps_at_the_input_size(shapes_checkpoint, make_cfg, tmp_path):
    path = exported(shapes_checkpoint, make_cfg, tmp_path)
    info = json.loads((path.parent / "model.json").read_text())
    assert info["task"] == "segmentation" and info["num_classes"] == 4
    side = info["input"]["height"]
    out = onnx_outputs(path, torch.randn(2, 3, side, side))
    assert out.shape == (2, 4, side, side)


def test_a_check_that_fails_keeps_no_file_and_names_the_difference(
    digits_checkpoint, make_cfg, tmp_path
):
    with pytest.raises(UserError, match=r"by up to [0-9.e-]+ on the test .*export.atol=0:"):
        exported(digits_checkpoint, make_cfg, tmp_path, "export.atol=0")
    assert not (tmp_path / "export" / "model.onnx").exists()


def test_a_perturbed_export_is_refused(digits_checkpoint, make_cfg, tmp_path, monkeypatch):
    """The file is written from a network whose first weight was moved by 0.05, and the check
    against the unchanged network catches it."""
    import cnnlab.inference.export as module

    write = module.write_onnx

    def perturbed(net, example, path, settings):
        weight = next(net.parameters())
        with torch.no_grad():
            weight.add_(0.05)
            write(net, example, path, settings)
            weight.sub_(0.05)

    monkeypatch.setattr(module, "write_onnx", perturbed)
    with pytest.raises(UserError, match=r"by up to 0\.[0-9]+ on .*export.atol=0.0001"):
        exported(digits_checkpoint, make_cfg, tmp_path)


def test_missing_onnx_names_the_extra(digits_checkpoint, make_cfg, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnxruntime)
    with pytest.raises(UserError, match=r"pip install 'cnnlab\[export\]'"):
        exported(digits_checkpoint, make_cfg, tmp_path)


def write_digits_pngs(folder, count: int = 5) -> None:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    folder.mkdir()
    digits = load_digits()
    for i in range(count):
        pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32)).save(folder / f"digit{i}.png")


def test_predict_from_onnx_equals_predict_from_the_checkpoint(
    digits_checkpoint, digits_onnx, make_cfg, tmp_path
):
    from cnnlab.cli.predict import predict

    model = digits_onnx
    write_digits_pngs(tmp_path / "in")
    rows = {}
    for name, ckpt in (("onnx", model), ("ckpt", digits_checkpoint)):
        cfg = make_cfg(
            [f"ckpt_path={ckpt}", f"input={tmp_path / 'in'}"], "predict", tmp_path / name
        )
        rows[name] = json.loads((predict(cfg) / "predictions.json").read_text())
    assert [r["label"] for r in rows["onnx"]] == [r["label"] for r in rows["ckpt"]]
    for ours, theirs in zip(rows["onnx"], rows["ckpt"], strict=True):
        assert ours["score"] == pytest.approx(theirs["score"], abs=2e-4)
        assert [t["label"] for t in ours["top5"]] == [t["label"] for t in theirs["top5"]]
    assert (tmp_path / "onnx" / "predictions" / "digit0.png").is_file()  # drawn as from a ckpt


def test_predict_from_an_exported_segmenter_writes_the_masks(shapes_checkpoint, make_cfg, tmp_path):
    from PIL import Image

    from cnnlab.cli.predict import predict

    model = exported(shapes_checkpoint, make_cfg, tmp_path, "format=torchscript")
    (tmp_path / "in").mkdir()
    Image.new("RGB", (50, 40), (30, 60, 90)).save(tmp_path / "in" / "flat.png")
    masks = {}
    for name, ckpt in (("exported", model), ("ckpt", shapes_checkpoint)):
        cfg = make_cfg(
            [f"ckpt_path={ckpt}", f"input={tmp_path / 'in'}"], "predict", tmp_path / name
        )
        out = predict(cfg)
        masks[name] = Image.open(out / "flat.png")
        assert json.loads((out / "masks.json").read_text())[0]["width"] == 50
    assert list(masks["exported"].getdata()) == list(masks["ckpt"].getdata())


def test_predict_from_onnx_does_not_import_lightning(digits_onnx, tmp_path):
    import subprocess
    import sys

    model = digits_onnx
    write_digits_pngs(tmp_path / "in", count=1)
    command = [sys.executable, "-X", "importtime", "-m", "cnnlab.cli.predict", f"ckpt_path={model}"]
    command += [f"input={tmp_path / 'in'}", f"hydra.run.dir={tmp_path / 'p'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "p" / "predictions" / "predictions.json").is_file()
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert "torch" in imported and not [m for m in imported if m.startswith("lightning")]


def test_an_exported_file_without_its_description_is_refused(make_cfg, tmp_path):
    from cnnlab.cli.predict import predict

    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "in").mkdir()
    from PIL import Image

    Image.new("L", (32, 32)).save(tmp_path / "in" / "x.png")
    cfg = make_cfg([f"ckpt_path={tmp_path / 'model.onnx'}", f"input={tmp_path / 'in'}"], "predict")
    with pytest.raises(UserError, match="no model.json beside it"):
        predict(cfg)


@pytest.fixture(scope="module")
def detector_checkpoint(tmp_path_factory):
    """A one-epoch Faster R-CNN on four 64-pixel shapes pictures (the export and the predictions
    below keep every box, model.box_score_thresh=0, so that there are boxes to match)."""
    from cnnlab.cli.train import train

    from composing import compose_run

    run_dir = tmp_path_factory.mktemp("detector")
    overrides = ["data=shapes_detection", "model=fasterrcnn", "model/backbone=resnet20"]
    overrides += ["data.image_size=64", "data.num_train=2", "data.num_val=1", "data.num_test=1"]
    overrides += ["data.batch_size=2", "trainer.max_epochs=1", "logger=none"]
    train(compose_run(overrides, "train", run_dir, run_dir / "data"))
    return run_dir / "checkpoints" / "last.ckpt"


def test_faster_rcnn_to_onnx_predicts_as_the_checkpoint(detector_checkpoint, make_cfg, tmp_path):
    from PIL import Image

    from cnnlab.cli.predict import predict

    every_box = "+model.box_score_thresh=0.0"  # on top of the stored config
    model = exported(detector_checkpoint, make_cfg, tmp_path, every_box)
    info = json.loads((model.parent / "model.json").read_text())
    assert info["task"] == "detection" and info["class_names"] == ["circle", "square", "triangle"]
    assert info["input"]["dynamic_batch"] is False  # one picture per call, any size
    (tmp_path / "in").mkdir()
    picture = Image.new("RGB", (140, 100), (40, 40, 40))
    picture.paste((200, 60, 60), (30, 20, 80, 70))
    picture.save(tmp_path / "in" / "square.png")
    rows = {}
    for name, ckpt in (("onnx", model), ("ckpt", detector_checkpoint)):
        overrides = [f"ckpt_path={ckpt}", f"input={tmp_path / 'in'}", "predict.score_threshold=0"]
        overrides += [every_box] if name == "ckpt" else []  # the exported graph has it inside
        out = predict(make_cfg(overrides, "predict", tmp_path / name))
        rows[name] = json.loads((out / "detections.json").read_text())
    assert len(rows["onnx"]) == len(rows["ckpt"]) > 0
    for ours, theirs in zip(rows["onnx"], rows["ckpt"], strict=True):
        assert ours["category_id"] == theirs["category_id"]
        assert ours["score"] == pytest.approx(theirs["score"], abs=2e-4)
        assert ours["bbox"] == pytest.approx(theirs["bbox"], abs=0.02)


def test_detectors_that_cannot_be_exported_say_why():
    from torch import nn

    from cnnlab.inference.export import check_exportable

    yolo = type("YOLOv1", (nn.Module,), {})()
    with pytest.raises(UserError, match="YOLOv1 detector yet: its box decoding and per-class NMS"):
        check_exportable("detection", yolo, "onnx")
    rcnn = type("RegionDetector", (nn.Module,), {})()
    with pytest.raises(UserError, match="Selective Search proposals"):
        check_exportable("detection", rcnn, "onnx")
    faster = type("FasterRCNN", (nn.Module,), {})()
    check_exportable("detection", faster, "onnx")
    with pytest.raises(UserError, match="format=onnx only"):
        check_exportable("detection", faster, "torchscript")
