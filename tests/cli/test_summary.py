"""cnnlab-summary: layer rows, totals, inexact-division notes and too-small inputs."""

import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.cli.summary import summary
from cnnlab.errors import UserError
from cnnlab.models import list_models


def row(text: str, name: str) -> str:
    """The table row of layer ``name``."""
    return next(line for line in text.splitlines() if line.split()[:1] == [name])


def test_lenet_totals(make_cfg) -> None:
    cfg = make_cfg(
        ["model=lenet", "input_size=32", "in_channels=1", "num_classes=10"], config_name="summary"
    )
    text = summary(cfg)
    assert "Total params: 61,706" in text
    assert "Trainable params: 61,706" in text
    assert "6 x 28 x 28" in row(text, "features.0")
    assert "note:" not in text  # every LeNet division is exact at 32


def test_resnet18_conv1_row_and_note(make_cfg) -> None:
    text = summary(make_cfg(["model=resnet18"], config_name="summary"))
    assert "Total params: 11,689,512" in text
    conv1 = row(text, "conv1")
    for cell in ("7x7x3x64", "64 x 112 x 112", "9,408", "118,013,952"):
        assert cell in conv1
    assert "(224 - 7 + 2*3)/2 + 1 = 112.5: torch keeps 112" in text


def test_depth_lists_stages(make_cfg) -> None:
    text = summary(make_cfg(["model=resnet18", "depth=1"], config_name="summary"))
    assert "512 x 7 x 7" in row(text, "layer4")
    assert "layer4.0.conv1" not in text
    assert "Total params: 11,689,512" in text


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
    bad = subprocess.run(
        [script, "model=lenet", "input_size=8", "in_channels=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stdout + bad.stderr
    assert "features.3" in bad.stdout + bad.stderr


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
