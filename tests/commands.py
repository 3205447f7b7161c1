"""Running cnnlab's installed console scripts from a test, as a user types them."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent  # the console scripts of the Python running the tests


def run_command(
    command: str, *args: str, cwd: Path, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run ``command`` (e.g. ``cnnlab-train``) with ``args`` in ``cwd``; stdout and stderr come
    together in ``.stdout``. HYDRA_FULL_ERROR is left out: tests check that no traceback shows."""
    env = dict(os.environ if env is None else env)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [str(BIN / command), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}; output ends with:\n{proc.stdout[-4000:]}"
