"""The catalogue of bad inputs (docs/errors.md), through ``cnnlab-train``.

Every refused command must exit non-zero with one paragraph that names the problem, the config
key as the user typed it and the fix, show no Python traceback (unless HYDRA_FULL_ERROR=1),
and leave what was already in the run folder as it was. Runs are kept tiny: one epoch of two
batches, no TensorBoard pictures.

Each process pays 4-5 s of imports, so one mistake of each kind goes through the real command
(exit status 2, no traceback, the message on the console and in train.log, the run folder left
as it was); the other rows of a kind are checked in-process, through what the command runs once
Hydra has composed the config (``validate`` then ``train``), for the same message (as the
command prints it) and the same untouched run folder.
"""

import hashlib
import json
import logging
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.cli.app import user_message
from cnnlab.errors import UserError

from commands import explain, run_command

pytestmark = pytest.mark.slow

TINY = (
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "callbacks.tensorboard_images=null",
)
TRACEBACK = "Traceback (most recent call last)"
SENTINEL = "keep.txt"


def train(tmp_path: Path, *args: str, run_dir: Path | None = None) -> subprocess.CompletedProcess:
    """``cnnlab-train`` with ``args`` (tiny), its run folder ``tmp_path/run`` holding a file
    written beforehand that a failed run must leave alone."""
    run_dir = run_dir or tmp_path / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SENTINEL).write_text("written before the run\n")
    return run_command("cnnlab-train", *TINY, *args, f"hydra.run.dir={run_dir}", cwd=tmp_path)


def assert_refused(proc: subprocess.CompletedProcess, *expected: str, run_dir: Path) -> None:
    assert proc.returncode != 0, explain(proc)
    assert TRACEBACK not in proc.stdout, explain(proc)
    for text in expected:
        assert text in proc.stdout, f"{text!r} missing; {explain(proc)}"
    assert (run_dir / SENTINEL).read_text() == "written before the run\n"


def train_here(make_cfg, tmp_path: Path, *args: str) -> dict[str, float]:
    """What ``cnnlab-train`` runs for ``args`` (tiny) once Hydra has composed them, in this
    process: ``validate`` then ``train``. Its run folder ``tmp_path/run`` holds a file written
    beforehand that a failed run must leave alone."""
    from cnnlab.cli.train import train as train_task
    from cnnlab.cli.validate import validate

    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SENTINEL).write_text("written before the run\n")
    cfg = make_cfg([*TINY, *args], run_dir=run_dir)
    validate(cfg)
    return train_task(cfg)


def assert_refused_here(make_cfg, tmp_path: Path, args: tuple[str, ...], *expected: str) -> None:
    """``train_here`` raises a UserError whose paragraph, as the command prints it, holds
    ``expected``; the run folder keeps the file written before and gets no results."""
    with pytest.raises(UserError) as refused:
        train_here(make_cfg, tmp_path, *args)
    message = user_message(refused.value)
    for text in expected:
        assert text in message, f"{text!r} missing from {message!r}"
    run_dir = tmp_path / "run"
    assert (run_dir / SENTINEL).read_text() == "written before the run\n"
    assert not (run_dir / "metrics.json").exists()


def image_tree(root: Path, per_class: int = 2, modes=("RGB",)) -> None:
    """root/{train,val}/{cat,dog}/<i>.png of 40x40 pixels, cycling through ``modes``."""
    for split in ("train", "val"):
        for c, name in enumerate(("cat", "dog")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                mode = modes[i % len(modes)]
                Image.new(mode, (40, 40), color=60 * c + 20 * i).save(folder / f"{i}.png")


def imagefolder(root: Path) -> tuple[str, ...]:
    # 4 training images in batches of 2: both batches of the one epoch read every file
    return (
        "data=imagefolder",
        f"data.root={root}",
        "data.image_size=32",
        "data.batch_size=2",
        "data.num_workers=0",
    )


# Rows 1-4 (unknown names, wrong types, values out of range) are checked in-process, row by row,
# in test_config_mistakes.py; here one of each kind goes through the real command, for the exit
# status, the absence of a traceback and the untouched run folder.
@pytest.mark.parametrize(
    "args, expected",
    [
        (["model=lenet6"], ["model=lenet6", "Did you mean model=lenet?", "vgg16"]),
        (["optimizer.lr=abc"], ["optimizer.lr=abc is not valid", "e.g. optimizer.lr="]),
    ],
    ids=["unknown name", "wrong value"],
)
def test_config_mistake_is_refused(tmp_path, args, expected):
    proc = train(tmp_path, *args)
    assert_refused(proc, *expected, run_dir=tmp_path / "run")
    assert proc.returncode == 2, explain(proc)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_full_error_shows_the_traceback(tmp_path):
    """HYDRA_FULL_ERROR=1 is how a user asks for the traceback behind a message."""
    run_dir = f"hydra.run.dir={tmp_path / 'run'}"
    proc = run_command("cnnlab-train", "optimizer.lr=abc", run_dir, cwd=tmp_path, full_error=True)
    assert proc.returncode != 0, explain(proc)
    assert TRACEBACK in proc.stdout, explain(proc)
    assert "optimizer.lr=abc is not valid" in proc.stdout


# Rows 5-7, 10, 13: data and model mistakes, found while the data or the first batch is read.
# The real command for the first (which also stands for cnnlab-train in test_commands.py's
# test of missing paths: status 2, the path in train.log, no metrics.json), the rest in-process.


def test_missing_data_root(tmp_path):
    root = tmp_path / "missing"
    proc = train(tmp_path, "data=imagefolder", f"data.root={root}", "data.num_workers=0")
    run_dir = tmp_path / "run"
    assert_refused(proc, f"{root} does not exist", "Set data.root", run_dir=run_dir)
    assert proc.returncode == 2, explain(proc)
    assert f"{root} does not exist" in (run_dir / "train.log").read_text()
    assert not (run_dir / "metrics.json").exists()


def test_empty_class_folder(make_cfg, tmp_path):
    root = tmp_path / "pictures"
    image_tree(root)
    for image in (root / "train" / "cat").iterdir():
        image.unlink()
    assert_refused_here(
        make_cfg,
        tmp_path,
        imagefolder(root),
        f"{root / 'train' / 'cat'} (under data.root={root}) has no images",
        "Add images to it or remove the folder",
    )


def test_corrupt_image_is_named(make_cfg, tmp_path):
    root = tmp_path / "pictures"
    image_tree(root)
    broken = root / "train" / "cat" / "1.png"
    broken.write_bytes(broken.read_bytes()[:60])  # a PNG cut off inside its pixel data
    assert_refused_here(
        make_cfg,
        tmp_path,
        (*imagefolder(root), "data.skip_corrupt=false"),
        f"Cannot read the image {broken}",
        "Replace or delete the file, or set data.skip_corrupt=true",
    )


def test_not_an_image_is_left_out_with_a_warning(make_cfg, tmp_path, caplog):
    """Row 8: a notes.txt among the pictures is skipped by its extension, and named."""
    root = tmp_path / "pictures"
    image_tree(root)
    notes = root / "train" / "cat" / "notes.txt"
    notes.write_text("taken in the garden\n")
    caplog.set_level(logging.WARNING)
    train_here(make_cfg, tmp_path, *imagefolder(root))
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert "that are not images by their extension" in caplog.text
    assert str(notes) in caplog.text


def test_grey_and_colour_images_mix(make_cfg, tmp_path):
    """Row 9: grey, RGB and RGBA files in one class folder are all read as RGB."""
    root = tmp_path / "pictures"
    image_tree(root, per_class=3, modes=("L", "RGB", "RGBA"))
    train_here(make_cfg, tmp_path, *imagefolder(root))
    assert (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.parametrize(
    "args, expected",
    [
        (("model=vgg11", "data.image_size=8"), "at least 32x32"),
        (("model=lenet", "data.image_size=16"), "LeNet-5 takes 32x32 images, got 16x16"),
    ],
    ids=["vgg11", "lenet"],
)
def test_image_too_small_for_the_model(make_cfg, tmp_path, args, expected):
    assert_refused_here(make_cfg, tmp_path, args, expected, "Set data.image_size=32")


def test_annotation_file_that_is_not_json(make_cfg, tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "train2017").mkdir()
    (root / "val2017").mkdir()
    for split in ("train", "val"):
        (root / "annotations" / f"instances_{split}2017.json").write_text("{images: [oops\n")
    assert_refused_here(
        make_cfg,
        tmp_path,
        (
            "data=coco",
            f"data.root={root}",
            "data.num_workers=0",
            "model=fasterrcnn_mobilenet_v3_large_fpn",
        ),
        f"{root / 'annotations' / 'instances_train2017.json'} (data.train_annotations) is not "
        "valid JSON",
        "Point data.train_annotations (relative to data.root)",
    )


# Rows 11-12: the run folder.


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_finished_run_is_not_overwritten(make_cfg, tmp_path):
    """The finished run and its resume are trained in-process (the imports are paid once); the
    refusal and the overwrite go through the real command."""
    from omegaconf import OmegaConf

    from cnnlab.cli import app
    from cnnlab.cli.train import train as train_task

    run_dir = tmp_path / "run"
    train_task(make_cfg(list(TINY), run_dir=run_dir))
    # what Hydra writes beside a run: a refused command must not touch it either
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(list(TINY)), run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save(make_cfg(list(TINY), run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    before = fingerprint(run_dir)
    assert {"metrics.json", ".hydra/config.yaml", "checkpoints/last.ckpt"} <= set(before)

    again = run_command("cnnlab-train", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert again.returncode != 0, explain(again)
    assert TRACEBACK not in again.stdout
    for text in (f"hydra.run.dir={run_dir} already holds a finished run", "overwrite=true"):
        assert text in again.stdout, explain(again)
    assert f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}" in again.stdout
    assert fingerprint(run_dir) == before  # byte for byte, .hydra/ included, no train.log

    # resuming it is allowed: two more epochs' worth of the same run, in the same folder
    last = run_dir / "checkpoints" / "last.ckpt"
    resume = [*TINY[1:], "trainer.max_epochs=2", f"ckpt_path={last}"]
    app.preflight("train", [*resume, f"hydra.run.dir={run_dir}"])  # no SystemExit
    assert train_task(make_cfg(resume, run_dir=run_dir))["epoch"] == 2

    replaced = run_command(
        "cnnlab-train", *TINY, "overwrite=true", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert replaced.returncode == 0, explain(replaced)
    after = fingerprint(run_dir)
    assert after[".hydra/overrides.yaml"] != before[".hydra/overrides.yaml"]
    assert "overwrite=true" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    epochs = json.loads((run_dir / "metrics.json").read_text())["epoch"]
    assert epochs == 1  # the new run's metrics.json, not the resumed run's 2 epochs


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root ignores permission bits, so chmod cannot make a folder read-only for this "
    "process; the check (os.access) runs all the same, and the test below covers a run folder "
    "that cannot be created and the simulated test after it",
)
def test_read_only_output_folder(tmp_path):
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        proc = run_command("cnnlab-train", *TINY, f"hydra.run.dir={parent / 'run'}", cwd=tmp_path)
    finally:
        parent.chmod(0o755)
    assert proc.returncode != 0, explain(proc)
    assert TRACEBACK not in proc.stdout
    assert f"{parent} is read-only for this user" in proc.stdout, explain(proc)
    assert "Choose a hydra.run.dir" in proc.stdout


def test_output_folder_under_a_file(tmp_path):
    """Row 12, as root can test it: the run folder cannot be created (a file is in the way)."""
    blocker = tmp_path / "results"
    blocker.write_text("a file, not a folder\n")
    proc = run_command("cnnlab-train", *TINY, f"hydra.run.dir={blocker / 'run'}", cwd=tmp_path)
    assert proc.returncode != 0, explain(proc)
    assert TRACEBACK not in proc.stdout
    assert f"{blocker} is a file, not a folder" in proc.stdout, explain(proc)
    assert "Choose another hydra.run.dir" in proc.stdout
    assert blocker.read_text() == "a file, not a folder\n"


def test_read_only_output_folder_simulated(tmp_path, monkeypatch, capsys):
    """Row 12 for any user, root included: the permission check is made to answer "no" (as
    os.access does for other users on a chmod 0o555 folder); in-process, no subprocess."""
    from cnnlab.cli import app

    monkeypatch.setattr(app.os, "access", lambda path, mode: False)
    run_dir = tmp_path / "readonly" / "run"
    run_dir.parent.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        app.preflight("train", [*TINY, f"hydra.run.dir={run_dir}"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert f"hydra.run.dir={run_dir} cannot be written" in message
    assert f"{run_dir.parent} is read-only for this user" in message
    assert not run_dir.exists()
