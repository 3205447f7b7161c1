"""Pretrained weights: torchvision's by name (from a tmp hub cache, never the network), local files
in every accepted format, refused and broken files, head and first-convolution handling."""

import json
import os
import pathlib
import pickle
from urllib.error import URLError
from urllib.parse import urlparse

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from cnnlab.errors import UserError
from cnnlab.models import get_model, list_models, torchvision_archs
from cnnlab.models.weights import (
    apply_state_dict,
    file_state_dict,
    load_pretrained,
    torchvision_state_dict,
)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A tmp torch hub cache; downloads fail as they would offline."""
    folder = tmp_path / "hub"
    (folder / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(folder))

    def offline(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    return folder / "checkpoints"


def tv_filename(arch: str, name: str) -> str:
    return os.path.basename(urlparse(torchvision.models.get_model_weights(arch)[name].url).path)


def small_state(**kwargs) -> dict[str, torch.Tensor]:
    return get_model("resnet20", num_classes=10, **kwargs).state_dict()


def assert_loaded(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    mine = net.state_dict()
    assert mine.keys() == state.keys()
    assert all(torch.equal(mine[k], v) for k, v in state.items())


# torchvision's published weights


@pytest.mark.parametrize("arch", torchvision_archs())
def test_allowed_archs_have_torchvision_layout(arch):
    if arch not in list_models():
        pytest.skip(f"{arch} is not registered")
    kwargs = {"aux_logits": False, "init_weights": False} if arch == "googlenet" else {}
    with torch.device("meta"):  # shapes only, no memory or initialisation time
        ours = get_model(arch).state_dict()
        theirs = torchvision.models.get_model(arch, weights=None, **kwargs).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_torchvision_weights_come_from_the_hub_cache(hub):
    reference = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(reference, hub / tv_filename("resnet18", "IMAGENET1K_V1"))
    net = get_model("resnet18", num_classes=10)
    fresh_fc = net.fc.weight.detach().clone()

    report = load_pretrained(net, arch="resnet18", weights="IMAGENET1K_V1")

    mine = net.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in reference.items() if not k.startswith("fc."))
    assert torch.equal(net.fc.weight, fresh_fc)
    assert list(report.head_left_out) == ["fc.weight", "fc.bias"]
    assert "fc.weight (1000x512 in the file, 10x512 here)" in str(report)
    assert report.loaded == len(mine) - 2 and report.adapted_first_conv is None
    assert torchvision_state_dict("resnet18", "DEFAULT").keys() == reference.keys()


def test_offline_without_cache_names_file_and_folder(hub):
    with pytest.raises(UserError) as e:
        torchvision_state_dict("resnet18", "IMAGENET1K_V1")
    assert tv_filename("resnet18", "IMAGENET1K_V1") in str(e.value)
    assert str(hub) in str(e.value)


@pytest.mark.parametrize("arch", ["lenet", "resnet20", "vgg16_c", "alexnet_2012", "nosuch"])
def test_arch_without_weights_lists_those_with(hub, arch):
    with pytest.raises(UserError, match=r"exist for: .*resnet18.*finetune\.weights=PATH"):
        torchvision_state_dict(arch, "IMAGENET1K_V1")


def test_unknown_weights_name_lists_names(hub):
    with pytest.raises(
        UserError, match=r"Available names: DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2\.$"
    ):
        torchvision_state_dict("resnet50", "IMAGENET22K")


# local files


def _lightning(state):
    sd = {f"net.{k}": v for k, v in state.items()} | {"train_acc.tp": torch.zeros(10)}
    return {"state_dict": sd, "epoch": 3, "cnnlab_config": {"model": {"name": "resnet20"}}}


FORMATS = {
    "run.ckpt": _lightning,
    "compiled.ckpt": lambda s: _lightning({f"_orig_mod.{k}": v for k, v in s.items()}),
    "plain.pt": lambda s: s,
    "plain.pth": lambda s: s,
    "wrapped.pth": lambda s: {"model": s, "epoch": 7},
    "dataparallel.pt": lambda s: {f"module.{k}": v for k, v in s.items()},
    "compiled.pt": lambda s: {"state_dict": {f"_orig_mod.{k}": v for k, v in s.items()}},
}


@pytest.mark.parametrize("name", [*FORMATS, "weights.safetensors"])
def test_each_file_format_loads(tmp_path, name):
    state = small_state()
    path = tmp_path / name
    if name.endswith(".safetensors"):
        save_file(state, path)
    else:
        torch.save(FORMATS[name](state), path)
    assert file_state_dict(path).keys() == state.keys()
    net = get_model("resnet20", num_classes=10)
    report = load_pretrained(net, path=path)
    assert_loaded(net, state)  # same number of classes: the head is loaded too
    assert report.loaded == len(state) and not report.head_left_out and not report.unexpected


class Trap:
    """Unpickling this runs pathlib.Path.touch: a file whose loading would execute code."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_code_in_a_pickle_is_refused_not_run(tmp_path, writer):
    marker, path = tmp_path / "marker", tmp_path / "evil.pt"
    payload = {"conv1.weight": torch.zeros(1), "trap": Trap(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(UserError, match="not executed.*safetensors") as e:
        file_state_dict(path)
    assert str(path) in str(e.value)
    assert not marker.exists()


def _truncated(path):
    torch.save(small_state(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _truncated_safetensors(path):
    save_file(small_state(), path)
    path.write_bytes(path.read_bytes()[:1000])


BROKEN = {
    "truncated.pt": (_truncated, "cut short"),
    "cut.safetensors": (_truncated_safetensors, "cut short"),
    "random.pt": (lambda p: p.write_bytes(os.urandom(4096)), "not a checkpoint"),
    "empty.pt": (lambda p: p.write_bytes(b""), "not a checkpoint"),
    "config.json": (lambda p: p.write_text(json.dumps({"lr": 0.1})), "not a checkpoint"),
    "metrics.pt": (lambda p: torch.save({"epoch": 3, "acc": 0.9}, p), "holds no tensors"),
    "missing.pt": (lambda p: None, "No weights file"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_files_are_user_errors(tmp_path, name):
    write, message = BROKEN[name]
    path = tmp_path / name
    write(path)
    with pytest.raises(UserError, match=message) as e:
        file_state_dict(path)
    assert str(path) in str(e.value)


# applying


def test_first_conv_3_to_1_sums_over_rgb():
    state = small_state(in_channels=3)
    net = get_model("resnet20", num_classes=10, in_channels=1)
    report = apply_state_dict(net, state, "rgb.pt")
    assert torch.allclose(net.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert report.adapted_first_conv == ("conv1.weight", 3, 1)
    assert "conv1.weight adapted from 3 to 1 input channels (summed" in str(report)


def test_first_conv_1_to_3_repeats_and_divides():
    state = small_state(in_channels=1)
    net = get_model("resnet20", num_classes=10, in_channels=3)
    apply_state_dict(net, state, "grey.pt")
    assert torch.allclose(net.conv1.weight, state["conv1.weight"].repeat(1, 3, 1, 1) / 3)


@pytest.mark.parametrize("file_channels", [1, 3])
def test_grey_image_gives_the_same_first_response(file_channels):
    state = small_state(in_channels=file_channels)
    net1 = get_model("resnet20", num_classes=10, in_channels=1)
    net3 = get_model("resnet20", num_classes=10, in_channels=3)
    apply_state_dict(net1, state, "file.pt")
    apply_state_dict(net3, state, "file.pt")
    grey = torch.randn(2, 1, 16, 16)
    assert torch.allclose(net1.conv1(grey), net3.conv1(grey.repeat(1, 3, 1, 1)), atol=1e-5)


def test_head_layers_that_fit_are_loaded_and_the_rest_left_out():
    state = get_model("lenet", num_classes=100).state_dict()
    net = get_model("lenet", num_classes=10)
    fresh = net.classifier[5].weight.detach().clone()
    report = apply_state_dict(net, state, "lenet100.pt")
    assert list(report.head_left_out) == ["classifier.5.weight", "classifier.5.bias"]
    assert torch.equal(net.classifier[1].weight, state["classifier.1.weight"])
    assert torch.equal(net.classifier[5].weight, fresh)
    assert report.loaded == len(state) - 2


def test_another_architecture_lists_names_and_shapes():
    with pytest.raises(UserError, match=r"conv1\.weight \(64x3x7x7 in the file, 16x3x3x3 here\)"):
        apply_state_dict(get_model("resnet20"), get_model("resnet18").state_dict(), "r18.pt")
    bigger = get_model("resnet32", num_classes=10).state_dict()
    with pytest.raises(UserError, match=r"in the file, not in this network.*and \d+ more.*model="):
        apply_state_dict(get_model("resnet20", num_classes=10), bigger, "r32.pt")


def test_missing_backbone_tensor_is_an_error_but_counters_are_not():
    state = {k: v for k, v in small_state().items() if not k.endswith("num_batches_tracked")}
    net = get_model("resnet20", num_classes=10)
    apply_state_dict(net, state, "no-counters.pt")
    del state["layer1.0.conv1.weight"]
    with pytest.raises(UserError, match=r"layer1\.0\.conv1\.weight \(missing from the file"):
        apply_state_dict(net, state, "holey.pt")


def test_aux_classifiers_in_the_file_are_reported_not_refused(caplog):
    if "googlenet" not in list_models():
        pytest.skip("googlenet is not registered")
    net = get_model("googlenet", num_classes=10, aux_logits=True)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.aux1 = net.aux2 = None  # as torchvision drops them after loading
    with caplog.at_level("INFO", logger="cnnlab"):
        report = apply_state_dict(net, state, "with-aux.pt")
    assert report.loaded == len(net.state_dict())
    assert "aux1.fc2.weight" in report.unexpected and "aux2.conv.conv.weight" in report.unexpected
    assert not any(k.endswith("num_batches_tracked") for k in report.unexpected)
    assert "aux1.conv.conv.weight" in caplog.text and "loaded" in caplog.text


def test_non_finite_head_is_left_out():
    state = small_state()
    state["fc.weight"] = torch.full_like(state["fc.weight"], float("nan"))
    net = get_model("resnet20", num_classes=10)
    report = apply_state_dict(net, state, "features-only.pt")
    assert torch.isfinite(net.fc.weight).all()
    assert report.head_left_out["fc.weight"] == "not finite in the file"


def test_load_pretrained_wants_exactly_one_source(tmp_path):
    net = get_model("resnet20", num_classes=10)
    with pytest.raises(UserError, match="one way"):
        load_pretrained(net)
    with pytest.raises(UserError, match="one way"):
        load_pretrained(net, arch="resnet18", weights="DEFAULT", path=tmp_path / "w.pt")
    with pytest.raises(UserError, match="architecture"):
        load_pretrained(net, weights="DEFAULT")
