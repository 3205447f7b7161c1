"""``ckpt_path=last``, the command that resumes an interrupted run, and the callback that
saves and names it when the run is stopped."""

import shlex
import sys
from pathlib import Path

from cnnlab.errors import UserError

LAST = "last"


def resolve_ckpt_path(ckpt_path: str, run_dir: str) -> str:
    """The checkpoint ``ckpt_path`` names: ``last`` is the newest ``last.ckpt`` of the run folder
    (``RUN_DIR/checkpoints/last.ckpt``, else the newest ``last.ckpt`` anywhere below it); any
    other value is a path, returned as it is."""
    if str(ckpt_path) != LAST:
        return str(ckpt_path)
    folder = Path(run_dir)
    usual = folder / "checkpoints" / "last.ckpt"
    if usual.is_file():
        return str(usual)
    found = sorted(folder.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    if found:
        return str(found[-1])
    raise UserError(
        f"ckpt_path=last: the run folder {folder} holds no checkpoints/last.ckpt to resume. "
        "Name the folder of the run to resume with hydra.run.dir=RUN_DIR (as the message of "
        "the interrupted run says), or give ckpt_path=PATH of a checkpoint."
    )


def resume_command(run_dir: str, command: str | None = None) -> str:
    """``cnnlab-train <the overrides of this run> hydra.run.dir=RUN_DIR ckpt_path=last``, quoted
    for a POSIX shell. The overrides are Hydra's record of what was typed (none outside a Hydra
    run); ``ckpt_path`` and the run folder are replaced."""
    overrides: list[str] = []
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            overrides = list(HydraConfig.get().overrides.task)
    except Exception:  # no Hydra run (a test or a library call): the bare command
        overrides = []
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("ckpt_path",)]
    name = command or Path(sys.argv[0]).name
    if not name.startswith("cnnlab-"):
        name = "cnnlab-train"
    words = [name, *kept, f"hydra.run.dir={run_dir}", f"ckpt_path={LAST}"]
    return " ".join(shlex.quote(w) for w in words)


def interrupt_callback(run_dir: str):
    """SIGTERM and Ctrl-C save RUN_DIR/checkpoints/last.ckpt and name the resume command."""
    from cnnlab.callbacks.interrupt import Interrupt

    last = Path(run_dir) / "checkpoints" / "last.ckpt"
    return Interrupt(str(last), resume_command(run_dir, "cnnlab-train"))
