"""cnnlab-summary: layer rows, totals, receptive fields, inexact-division notes and too-small
inputs."""

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlab.nn
from cnnlab.cli.summary import summary
from cnnlab.errors import UserError
from cnnlab.models import get_model, list_models
from cnnlab.summary.layer_table import layer_table


def row(text: str, name: str) -> str:
    """The table row of layer ``name``."""
    return next(line for line in text.splitlines() if line.split()[:1] == [name])


def rf_jump(text: str, name: str) -> tuple[str, str]:
    """The RF and Jump cells of layer ``name`` (the three columns after them hold no spaces)."""
    cells = row(text, name).split()
    return cells[-5], cells[-4]


def test_lenet_totals(make_cfg) -> None:
    cfg = make_cfg(
        ["model=lenet", "input_size=32", "in_channels=1", "num_classes=10"], config_name="summary"
    )
    text = summary(cfg)
    assert "Total params: 61,706" in text
    assert "Trainable params: 61,706" in text
    assert "6 x 28 x 28" in row(text, "features.0")
    assert "note:" not in text  # every LeNet division is exact at 32
    assert rf_jump(text, "features.5") == ("16", "4")  # S4: 16 pixels, units 4 apart
    assert rf_jump(text, "classifier.1") == ("32", "4")  # C5 reads all 5x5: 16 + 4 * 4 = 32
    assert rf_jump(text, "classifier.3") == ("32", "4")  # F6 after the flatten: the same


@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_resnet18_conv1_row_and_note(make_cfg) -> None:
    text = summary(make_cfg(["model=resnet18"], config_name="summary"))
    assert "Total params: 11,689,512" in text
    conv1 = row(text, "conv1")
    for cell in ("7x7x3x64", "64 x 112 x 112", "9,408", "118,013,952"):
        assert cell in conv1
    assert "(224 - 7 + 2*3)/2 + 1 = 112.5: torch keeps 112" in text


@pytest.mark.slow  # ResNet-18 at 224: ~1 s
def test_depth_lists_stages(make_cfg) -> None:
    text = summary(make_cfg(["model=resnet18", "depth=1"], config_name="summary"))
    assert "512 x 7 x 7" in row(text, "layer4")
    assert "layer4.0.conv1" not in text
    assert "Total params: 11,689,512" in text
    # through every shortcut: an add keeps the larger field of its two inputs
    assert rf_jump(text, "layer4") == ("435", "32")
    assert rf_jump(text, "avgpool") == ("627", "224")  # the global pool sees 435 + 6 * 32


@pytest.mark.parametrize("name", ["alexnet", "alexnet_2012"])
def test_alexnet_pool5_receptive_field(make_cfg, name: str) -> None:
    if name not in list_models():
        pytest.skip(f"{name} is not registered")
    text = summary(make_cfg([f"model={name}"], config_name="summary"))
    pools = [line.split()[0] for line in text.splitlines() if line.startswith("features.")]
    pool5 = [n for n in pools if row(text, n).split()[1] == "3x3"][-1]  # the last max pool
    assert rf_jump(text, pool5) == ("195", "32")


@pytest.mark.slow  # VGG-16 at 224: about 1.4 s
def test_vgg16_pool5_receptive_field(make_cfg) -> None:
    text = summary(make_cfg(["model=vgg16"], config_name="summary"))
    assert "2x2" in row(text, "features.30")
    assert rf_jump(text, "features.30") == ("212", "32")


def test_textbook_layers_give_the_same_rows() -> None:
    """LeNet-5 built from cnnlab.nn's convolution and pooling summarises as torch's does."""
    textbook = nn.Sequential(
        OrderedDict(
            features=nn.Sequential(
                cnnlab.nn.Conv2d(1, 6, kernel_size=5),
                nn.ReLU(inplace=True),
                cnnlab.nn.MaxPool2d(2),
                cnnlab.nn.Conv2d(6, 16, kernel_size=5),
                nn.ReLU(inplace=True),
                cnnlab.nn.AvgPool2d(2),
            ),
            classifier=nn.Sequential(nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU()),
        )
    )
    reference = get_model("lenet", num_classes=10, in_channels=1)
    reference.features[5] = nn.AvgPool2d(2)  # as in the textbook copy: both kinds of pooling
    reference.classifier = reference.classifier[:3]
    ours, torchs = layer_table(textbook, 32, 1), layer_table(reference, 32, 1)

    def cells(table):
        return [(r.name, r.kernel, r.output, r.rf, r.jump, r.params, r.macs) for r in table.rows]

    assert cells(ours) == cells(torchs)
    assert ours.rows[-2].rf == 32 and ours.rows[-2].kernel == "400x120"
    assert (ours.total_params, ours.total_macs) == (torchs.total_params, torchs.total_macs)


def test_branches_take_the_larger_field() -> None:
    """An Inception-style concat of a 3x3 and a 5x5 branch sees what the 5x5 sees."""

    class TwoBranches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 4, 3, stride=2, padding=1)  # RF 3, jump 2
            self.small = nn.Conv2d(4, 4, 3, padding=1)  # 3 + 2 * 2 = 7
            self.large = nn.Conv2d(4, 4, 5, padding=4, dilation=2)  # span 9: 3 + 8 * 2 = 19
            self.merge = nn.Conv2d(8, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stem(x)
            return self.merge(torch.cat([self.small(x), self.large(x)], 1))

    rows = {r.name: (r.rf, r.jump) for r in layer_table(TwoBranches(), 16, 1).rows}
    assert rows == {"stem": (3, 2), "small": (7, 2), "large": (19, 2), "merge": (19, 2)}


def test_alexnet_2012_first_row(make_cfg) -> None:
    if "alexnet_2012" not in list_models():
        pytest.skip("alexnet_2012 is not registered")
    text = summary(make_cfg(["model=alexnet_2012"], config_name="summary"))
    first = row(text, "features.0")
    for cell in ("11x11x3x96", "96 x 55 x 55", "34,944", "4.37e10"):
        assert cell in first
    assert "(224 - 11 + 2*2)/4 + 1 = 55.25: torch keeps 55, the last pixels are dropped" in text


def test_too_small_input_names_layer_and_formula(make_cfg) -> None:
    cfg = make_cfg(["model=lenet", "input_size=8", "in_channels=1"], config_name="summary")
    with pytest.raises(UserError, match=r"features\.3") as info:
        summary(cfg)
    assert "(N - F + 2P)/S + 1" in str(info.value)
    assert "(2 - 5 + 2*0)/1 + 1 = -2" in str(info.value)


@pytest.mark.slow  # VGG-16 twice with its 120M-weight classifier: about 10 s
def test_the_papers_segmentation_parameter_counts(make_cfg) -> None:
    sizes = ["input_size=224", "in_channels=3", "num_classes=21"]
    text = summary(make_cfg(["model=deeplab_v1", *sizes], config_name="summary"))
    assert "Trainable params: 20,505,429" in text  # DeepLab-LargeFOV's 20.5M
    fc6 = row(text, "head.fc6")
    assert "3x3x512x1024 rate 12" in fc6 and "1024 x 28 x 28" in fc6
    assert "note:" not in text  # every dilated division is exact: span 25, padding 12
    fcn = ["model=fcn32s", "model/backbone=vgg16", *sizes]
    assert "Trainable params: 134,346,581" in summary(make_cfg(fcn, config_name="summary"))


@pytest.mark.slow
def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("cnnlab-summary")
    ok = subprocess.run(
        [script, "model=lenet", "input_size=32", "in_channels=1", "num_classes=10"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().endswith("Total mult-adds: 416,520")
    assert "Total params: 61,706" in ok.stdout
    assert list(tmp_path.iterdir()) == []  # no run folder, no log file


@pytest.mark.slow  # with test_console_script: the command's half of it
def test_console_script_ends_a_mistake_with_status_2(make_cfg, caplog) -> None:
    """What ``cnnlab-summary model=lenet input_size=8 in_channels=1`` runs once Hydra has
    composed its config: the command's own wrapper (entry_point), in-process; how a UserError
    ends a real process (status 2, no traceback) is checked through cnnlab-train in
    test_bad_inputs.py, and the message in full by test_too_small_input_names_layer_and_formula."""
    from cnnlab.cli.summary import main

    cfg = make_cfg(["model=lenet", "input_size=8", "in_channels=1"], config_name="summary")
    with pytest.raises(SystemExit) as exit_info:
        main.__wrapped__(cfg)  # Hydra's main with the composed config passed through
    assert exit_info.value.code == 2
    assert "features.3" in caplog.text and "Traceback" not in caplog.text


@pytest.mark.slow  # every model summarised: ~1 s
def test_readme_model_table_is_what_cnnlab_summary_prints() -> None:
    """The README's table comes from `cnnlab-summary models_table=true`; spot-check its rows."""
    from cnnlab.factory.configs import config_dir
    from cnnlab.summary.model_zoo import zoo_markdown, zoo_rows

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = zoo_rows(config_dir(), ["lenet", "alexnet_2012", "googlenet", "resnet20"])
    for line in zoo_markdown(rows).splitlines():
        assert line in readme, line
    assert "| `lenet` | - | - | 61,706 |" in readme
    assert "| `googlenet` | 6,624,904 |" in readme
