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
        def guarded(cfg: DictConfig) -> None:
            try:
                task(cfg)
            except UserError as e:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                log.error("%s", user_message(e))
                sys.exit(2)

        return hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)(
            guarded
        )

    return decorate


def user_message(error: UserError) -> str:
    """The paragraph of a UserError, also when a DataLoader worker re-raised it with a traceback."""
    text = str(error)
    marker = "UserError: "
    return text.rsplit(marker, 1)[-1].strip() if "Original Traceback" in text else text
