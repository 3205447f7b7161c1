"""Running cnnlab's installed console scripts from a test, as a user types them."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent  # the console scripts of the Python running the tests


def _popen_kwargs(cwd: Path, env: dict | None, full_error: bool) -> dict:
    """stdout and stderr together, no stdin; HYDRA_FULL_ERROR left out unless ``full_error``
    (tests check that no traceback shows)."""
    env = dict(os.environ if env is None else env)
    env.pop("HYDRA_FULL_ERROR", None)
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    return dict(cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)  # fmt: skip


def run_command(
    command: str,
    *args: str,
    cwd: Path,
    env: dict | None = None,
    timeout: int = 600,
    full_error: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``command`` (e.g. ``cnnlab-train``) with ``args`` in ``cwd`` to its end; stdout and
    stderr come together in ``.stdout``."""
    kwargs = _popen_kwargs(cwd, env, full_error)
    return subprocess.run([str(BIN / command), *args], timeout=timeout, **kwargs)


def start_command(command: str, *args: str, cwd: Path, env: dict | None = None):
    """Start ``command`` and return the running process (a test that signals or kills it)."""
    return subprocess.Popen([str(BIN / command), *args], **_popen_kwargs(cwd, env, False))


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}; output ends with:\n{proc.stdout[-4000:]}"
