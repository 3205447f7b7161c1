"""The config tree ships inside the wheel and is found after a plain (non-editable) install."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def build_wheel(out: Path) -> Path:
    """``pip wheel`` of the repository; without build isolation where hatchling is installed,
    else with it (pip then fetches hatchling from the package index)."""
    base = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out)]
    attempts = []
    for extra in (["--no-build-isolation"], []):
        proc = subprocess.run(
            [*base, *extra, str(REPO)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        wheels = sorted(out.glob("cnnlab-*.whl"))
        if proc.returncode == 0 and wheels:
            return wheels[-1]
        attempts.append(f"$ {' '.join(proc.args)}\n{proc.stdout[-3000:]}")
    pytest.fail("could not build a wheel:\n" + "\n".join(attempts))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_holds_every_config_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("train.yaml", "data/digits.yaml", "model/lenet.yaml"):
        assert f"cnnlab/configs/{required}" in names
    in_repo = {
        p.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*.yaml")
    }
    in_wheel = {n.removeprefix("cnnlab/configs/") for n in names if n.startswith("cnnlab/configs/")}
    assert in_repo <= in_wheel, f"not in the wheel: {sorted(in_repo - in_wheel)}"
    assert "cnnlab/cli/app.py" in names
    # the sweeper's name for Hydra, in the hydra_plugins namespace that other plugins share
    assert "hydra_plugins/cnnlab_optuna_sweeper/__init__.py" in names
    assert "hydra_plugins/__init__.py" not in names


CHECK = textwrap.dedent(
    """
    import json, sys
    import cnnlab
    from cnnlab.factory.configs import config_dir
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["model=resnet18"])
    print(json.dumps({
        "cnnlab": cnnlab.__file__,
        "config_dir": config_dir(),
        "model": cfg.model._target_,
        "data": cfg.data._target_,
        "max_epochs": cfg.trainer.max_epochs,
    }))
    """
)


def run_python(args: list[str], target: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(target))
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_installed_wheel_finds_its_configs(wheel, tmp_path):
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    elsewhere = tmp_path / "cwd"  # not the repository, so no configs/ folder nearby
    elsewhere.mkdir()

    proc = run_python(["-c", CHECK], target, elsewhere)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    root = str(target.resolve())
    assert found["cnnlab"].startswith(root), found  # this copy, not the editable install
    assert found["config_dir"].startswith(root), found
    assert Path(found["config_dir"]) == target.resolve() / "cnnlab" / "configs"
    assert found["model"] == "cnnlab.models.resnet.resnet18"
    assert found["data"] == "cnnlab.data.digits.DigitsDataModule"
    assert found["max_epochs"] == 20

    # The console script's own entry point (hydra.main) composes from the installed copy too.
    main = "import sys; from cnnlab.cli.train import main; sys.exit(main())"
    proc = run_python(["-c", main, "--cfg", "job", "model=resnet18"], target, elsewhere)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "_target_: cnnlab.models.resnet.resnet18" in proc.stdout
    assert list(elsewhere.iterdir()) == []
