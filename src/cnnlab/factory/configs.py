"""Where cnnlab's config tree is, the resolvers its files use, and which model configs serve a
task (read from the family file that each config's builder lives in)."""

import importlib
from pathlib import Path

from omegaconf import OmegaConf

from cnnlab.tasks.table import TASKS, checkpoint_name


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


def _row(task: str):
    return TASKS.get(task, TASKS["classification"])


# ${task_monitor:${data.task}}: the metric the best checkpoint is chosen by, and its mode;
# ${task_checkpoint_name:${data.task}}: the best checkpoint's file-name pattern.
RESOLVERS = {
    "task_monitor": lambda task: _row(task).monitor,
    "task_mode": lambda task: _row(task).mode,
    "task_checkpoint_name": checkpoint_name,
}


def register_resolvers() -> None:
    """Make the resolvers above known to OmegaConf (once; later calls do nothing)."""
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def family_fact(target: str, name: str, default):
    """What the family file of the model builder ``target`` (``cnnlab.models.resnet.resnet18``)
    declares as ``name`` (``TASK``, ``ZOO_POSITION``); ``default`` where it declares nothing."""
    try:
        return getattr(importlib.import_module(target.rpartition(".")[0]), name)
    except (ImportError, AttributeError, ValueError):  # ValueError: an empty target
        return default


def model_task(target: str) -> str:
    """The task of the model builder ``target``: the ``TASK`` its family file declares (a user's
    own builder that declares nothing is taken for a classifier)."""
    return family_fact(target, "TASK", "classification")


def models_for_task(task: str) -> list[str]:
    """The names of the model configs (configs/model/*.yaml) whose builder serves ``task``."""
    names = []
    for path in sorted((Path(config_dir()) / "model").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_", "")
        if model_task(target) == task:
            names.append(path.stem)
    return names
