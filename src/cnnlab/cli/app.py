"""Hydra plumbing shared by the entry points: where the configs are, how errors are shown."""

import difflib
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from cnnlab.cli.heap import skip_final_collection
from cnnlab.cli.validate import validate
from cnnlab.errors import UserError
from cnnlab.factory.configs import config_dir, register_resolvers

register_resolvers()  # the configs' ${task_monitor:...} and friends, for every command

log = logging.getLogger("cnnlab")


def quiet_library_noise() -> None:
    """What a command's log should not show twice or at all; called as a command starts."""
    # Lightning's top-level package adds a console handler of its own; Hydra's root handlers
    # already print to the console and to train.log, so drop it rather than print lines twice.
    logging.getLogger("lightning").handlers.clear()
    # A small in-memory dataset loads fastest in the main process; Lightning would advise workers.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # A resumed run writes a run folder of its own, so its checkpoint folder differs by design.
    warnings.filterwarnings("ignore", ".*The dirpath has changed from.*")


def typed_overrides(cfg: DictConfig) -> dict[str, object]:
    """The keys the user set on the command line (``a.b=1``, ``+a.c=2``, ``group=name``) with
    their composed values: what a restored run puts on top of its stored config."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    keys = []
    for item in HydraConfig.get().overrides.task:
        key = item.split("=", 1)[0].lstrip("+")
        if not key.startswith(("~", "hydra.")) and "=" in item:
            keys.append(key)
    return {key: OmegaConf.select(cfg, key) for key in keys}


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
                validate(cfg)
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
            skip_final_collection()  # the console command ends in 0.2 s instead of 2-3 s
            if launched_rank() > 0:
                # Another rank of a multi-process run (Lightning's DDP relaunch, torchrun, srun):
                # rank 0 alone writes the run folder's .hydra/ and log file.
                sys.argv += ["hydra.output_subdir=null"]
                sys.argv += ["++hydra.job_logging.root.handlers=[console]"]
                sys.argv += ["~hydra.job_logging.handlers.file"]  # or it still creates the file
            else:
                preflight(config_name, sys.argv[1:])
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


# Checks made before ``hydra.main`` takes over: Hydra composes the config and writes
# RUN_DIR/.hydra/ before the task function runs, so what must leave a run folder untouched, or
# replace Hydra's own report, happens here, from the command line as typed.


def preflight(config_name: str, args: list[str]) -> None:
    """Refuse, before Hydra writes anything, a run folder that cannot or must not be written
    and a config group choice that does not exist. A ``-m`` sweep and a command line with
    flags (``--cfg``, ``--config-dir``, ...) are left to Hydra."""
    if any(arg.startswith("-") for arg in args):
        return
    try:
        overrides = plain_overrides(args)
        if overrides.get("hydra.mode", "").upper() == "MULTIRUN":
            return
        check_run_folder(config_name, overrides)
        check_group_choices(config_name, args)
    except UserError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(2)


def plain_overrides(args: list[str]) -> dict[str, str]:
    """``key=value`` arguments as {key: value}, the key without Hydra's ``+``/``++`` prefix."""
    pairs = (arg.split("=", 1) for arg in args if "=" in arg and not arg.startswith("~"))
    return {key.lstrip("+"): value for key, value in pairs}


def check_run_folder(config_name: str, overrides: dict[str, str]) -> None:
    """An explicit ``hydra.run.dir`` must be writable, and must not hold a finished run
    (metrics.json) unless ``ckpt_path`` resumes it or ``overwrite=true`` (only for entry points
    whose config has an ``overwrite`` key: cnnlab-train)."""
    typed = overrides.get("hydra.run.dir")
    if not typed or "${" in typed:
        return
    run_dir = Path(typed)
    existing = next(p for p in (run_dir, *run_dir.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise UserError(
            f"hydra.run.dir={typed} cannot be created: {existing} is a file, not a folder. "
            "Choose another hydra.run.dir, or move that file away."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"hydra.run.dir={typed} cannot be written: {existing} is read-only for this user. "
            "Choose a hydra.run.dir in a folder you can write to, or make that folder writable "
            f"(e.g. chmod u+w {existing})."
        )
    protects = "overwrite" in OmegaConf.load(Path(config_dir()) / f"{config_name}.yaml")
    if not protects or not (run_dir / "metrics.json").is_file():
        return
    if overrides.get("ckpt_path", "null") not in ("", "null", "None"):
        return
    if overrides.get("overwrite", "false").lower() == "true":
        return
    raise UserError(
        f"hydra.run.dir={typed} already holds a finished run (its metrics.json is there); "
        "nothing was written. Choose another hydra.run.dir, resume that run with "
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}, or add overwrite=true to train "
        "into the same folder again (the new run replaces .hydra/, metrics.json and last.ckpt; "
        "the old best checkpoint, TensorBoard events and train.log lines stay beside the new)."
    )


def check_group_choices(config_name: str, args: list[str]) -> None:
    """Compose the config once when a config group is chosen (``model=NAME``), so that a name
    that does not exist is reported as one paragraph with the names that do."""
    groups = {p.name for p in Path(config_dir()).iterdir() if p.is_dir()}
    chosen = [arg for arg in args if arg.split("=", 1)[0].lstrip("+~").split("/")[0] in groups]
    if not any("=" in arg for arg in chosen):
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import MissingConfigException

    try:
        with initialize_config_dir(config_dir(), version_base="1.3", job_name=config_name):
            compose(config_name, overrides=args)
    except MissingConfigException as e:
        if not e.options or not e.missing_cfg_file or "/" not in e.missing_cfg_file:
            return  # Hydra's own report follows
        group, name = e.missing_cfg_file.rsplit("/", 1)
        typed = next(
            (a for a in chosen if a.lstrip("+").split("=", 1) == [group, name]),
            f"{group}={name}",
        )
        close = difflib.get_close_matches(name, e.options, n=1)
        hint = f"Did you mean {group}={close[0]}? " if close else ""
        raise UserError(
            f"{typed}: there is no {group} config named {name!r}. {hint}The {group} configs "
            f"are: {', '.join(e.options)}. Choose one of them, or add your own "
            f"{group}/{name}.yaml in a folder given with --config-dir."
        ) from None
    except Exception:
        return  # any other composition problem: Hydra reports it next, in its own words
