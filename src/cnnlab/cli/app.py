"""Hydra plumbing shared by the entry points: where the configs are, how errors are shown."""

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from cnnlab.cli import resolvers
from cnnlab.errors import UserError

resolvers.register()

log = logging.getLogger("cnnlab")


def config_dir() -> str:
    """The config tree: inside the installed package (a wheel), else the repository's configs/.

    An absolute folder path, because Hydra reads a relative ``config_path`` of an entry point
    that lives in a package as a Python package path, not as a folder.
    """
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "configs", package.parents[1] / "configs"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"cnnlab's configs are missing: looked in {package / 'configs'}")


def entry_point(config_name: str) -> Callable[[Callable[[DictConfig], object]], Callable[[], None]]:
    """Turn ``task(cfg)`` into a console-script ``main()`` that composes ``config_name``.

    A UserError ends the run with its one-paragraph message and exit status 2, without a
    traceback unless HYDRA_FULL_ERROR=1.
    """

    def decorate(task: Callable[[DictConfig], object]) -> Callable[[], None]:
        @functools.wraps(task)
        def guarded(cfg: DictConfig) -> object:
            argv = sys.argv[:]
            env = {name: os.environ.get(name) for name in DDP_ENV}
            try:
                relaunch_as_this_job()
                if launched_rank() > 0:  # ranks started in-process (submitit): no log file either
                    for handler in logging.getLogger().handlers[:]:
                        if isinstance(handler, logging.FileHandler):
                            logging.getLogger().removeHandler(handler)
                return task(cfg)  # a sweeper such as Optuna reads the value returned
            except UserError as e:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                log.error("%s", user_message(e))
                sys.exit(2)
            finally:
                sys.argv[:] = argv
                end_process_group(env)

        app = hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)(
            guarded
        )

        @functools.wraps(app)
        def main() -> None:
            if launched_rank() > 0:
                # Another rank of a multi-process run (Lightning's DDP relaunch, torchrun, srun):
                # rank 0 alone writes the run folder's .hydra/ and log file.
                sys.argv += ["hydra.output_subdir=null"]
                sys.argv += ["++hydra.job_logging.root.handlers=[console]"]
                sys.argv += ["~hydra.job_logging.handlers.file"]  # or it still creates the file
            app()

        return main

    return decorate


def launched_rank() -> int:
    """This process's rank as its launcher set it (0 when started on its own)."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0


def relaunch_as_this_job() -> None:
    """Make Lightning's DDP relaunch of the other ranks repeat this job, not the whole sweep.

    Lightning starts rank 1.. with this process's ``sys.argv`` plus
    ``hydra.run.dir=<hydra.run.dir>``. In a ``-m`` sweep that would be the sweep again (every
    job, in a folder of its own), so the command line becomes this job's own overrides and the
    run folder this job's folder. A single run is left as it is.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import read_write

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    sys.argv[1:] = list(hydra_cfg.overrides.task)
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def user_message(error: UserError) -> str:
    """The paragraph of a UserError, also when a DataLoader worker re-raised it with a traceback."""
    text = str(error)
    marker = "UserError: "
    return text.rsplit(marker, 1)[-1].strip() if "Original Traceback" in text else text


# What Lightning's DDP launcher sets in the launching process; left set, the next job of a
# sweep would take itself for a rank started from outside and wait for ranks nobody starts.
DDP_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def end_process_group(env: dict[str, str | None]) -> None:
    """Close the DDP process group a job opened and put back the environment it found, so the
    next job of a ``-m`` sweep (same process) launches ranks of its own."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
