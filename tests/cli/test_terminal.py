"""What cnnlab-train shows in the terminal: a rich bar in a terminal, plain lines in a file or a
pipe, the run folder first and last, the config tree with extras.print_config=true.

The subprocess tests shorten the epoch with Lightning's limit_*_batches to stay quick.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.callbacks.progress import print_config_tree
from cnnlab.cli.train import train

BIN = Path(sys.executable).parent
SHORT = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=5",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "callbacks.tensorboard_images=null",
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["COLUMNS"] = "200"  # rich wraps the bar's metrics onto more lines in a narrow terminal
    return env


def lines_of(text: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]", ANSI.sub("", text)) if line.strip()]


def test_config_tree_has_a_branch_per_section(capsys):
    print_config_tree(
        {"seed": 42, "trainer": {"max_epochs": 3}, "data": {"task": "classification"}}
    )
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "config"
    # data before trainer (the reading order), then the other keys
    assert out.index("data") < out.index("trainer") < out.index("seed: 42")
    assert "task: classification" in out and "max_epochs: 3" in out


def test_print_config_shows_the_composed_config(make_cfg, capsys):
    cfg = make_cfg(["extras.print_config=true", "debug=fast_dev_run"])
    train(cfg)
    out = capsys.readouterr().out
    assert "config" in out.splitlines()
    assert "├── data" in out and "├── model" in out and "fast_dev_run: true" in out


def test_print_config_is_off_by_default(make_cfg, capsys):
    train(make_cfg(["debug=fast_dev_run"]))
    assert "├── data" not in capsys.readouterr().out


@pytest.mark.slow
def test_plain_lines_in_a_pipe_with_the_run_folder_first_and_last(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [str(BIN / "cnnlab-train"), *SHORT, "extras.print_config=true", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env=environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "\r" not in out and "\x1b[" not in out  # no live bar, no colour codes
    assert "it/s" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].endswith(f"Run folder: {run_dir}")
    assert lines[-1].endswith(f"Run folder: {run_dir}")
    epoch = next(i for i, line in enumerate(lines) if re.search(r"- epoch 1/1  step 5 ", line))
    assert "train/loss=" in lines[epoch] and "val/acc=" in lines[epoch]
    tree = lines.index("config")
    assert 0 < tree < epoch and "├── data" in out
    assert (run_dir / "train.log").read_text().count(f"Run folder: {run_dir}") == 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("script") is None, reason="no `script` command for a terminal")
def test_rich_bar_in_a_terminal(tmp_path):
    """``script`` gives the command a pseudo-terminal, as a user's shell would."""
    run_dir = tmp_path / "run"
    command = " ".join([str(BIN / "cnnlab-train"), *SHORT, f"hydra.run.dir={run_dir}"])
    proc = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        cwd=tmp_path,
        env=environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,
    )
    lines = lines_of(proc.stdout)
    assert proc.returncode == 0, "\n".join(lines[-40:])
    assert lines[0].endswith(f"Run folder: {run_dir}")
    assert lines[-1].endswith(f"Run folder: {run_dir}")
    bars = [line for line in lines if line.startswith("Epoch 0/0")]
    assert bars, "\n".join(lines[-40:])
    final = bars[-1]
    assert "5/5" in final  # steps done / steps in the epoch
    assert re.search(r"\d+:\d\d:\d\d • \d+:\d\d:\d\d", final)  # elapsed • ETA
    assert re.search(r"\d+(\.\d+)?it/s", final)
    for metric in ("train/loss", "train/acc", "val/acc"):
        assert f"{metric}: " in final
