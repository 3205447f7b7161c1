"""The model zoo as one Markdown table: parameters and mult-adds of every model config.

Each model is built from its own config file (configs/model/NAME.yaml) and measured with the
same layer table as ``cnnlab-summary model=NAME``: once in the ImageNet setting (224x224x3,
1,000 classes) and once in the setting of the bundled digits (32x32x1, 10 classes), where a null
``small_input`` picks the small-input layout as it does in training. Rows follow the lecture,
family by family in the order the family files declare (``ZOO_POSITION``: LeNet, AlexNet, VGG,
GoogLeNet, ResNet, CIFAR ResNet), each family in the order its file registers them.
"""

from pathlib import Path

from omegaconf import OmegaConf

from cnnlab.errors import UserError
from cnnlab.summary.layer_table import layer_table

SETTINGS = ((224, 3, 1000), (32, 1, 10))  # (input size, channels, classes)


def measure(model_cfg, size: int, channels: int, classes: int) -> tuple[int, int] | None:
    """(parameters, mult-adds) of ``model_cfg`` for one setting; None where the model refuses it."""
    from cnnlab.factory.build import build_network

    try:
        net = build_network(model_cfg, classes, channels, size, load_weights=False)
        table = layer_table(net, size, channels)
    except UserError:  # e.g. LeNet-5 takes 32x32 images only
        return None
    return table.total_params, table.total_macs


def zoo_position(target: str) -> float:
    """The ``ZOO_POSITION`` the family file of builder ``target`` declares; none: last."""
    from cnnlab.factory.configs import family_fact

    return family_fact(target, "ZOO_POSITION", float("inf"))


def lecture_order(names: list[str], folder: Path) -> list[str]:
    """Family by family as the lecture goes; within a family, the registry's order."""
    from cnnlab.models import list_models

    registered = list_models(sorted_=False)

    def key(name: str) -> tuple[float, int]:
        target = OmegaConf.load(folder / f"{name}.yaml").get("_target_", "")
        order = registered.index(name) if name in registered else len(registered)
        return zoo_position(target), order

    return sorted(names, key=key)


def zoo_rows(config_dir: str | Path, names: list[str] | None = None) -> list[list[str]]:
    """One row per model config: name, then params and mult-adds for each setting."""
    from cnnlab.factory.configs import models_for_task

    folder = Path(config_dir) / "model"
    names = names or lecture_order(models_for_task("classification"), folder)
    rows = []
    for name in names:
        cfg = OmegaConf.load(folder / f"{name}.yaml")
        cells = [f"`{name}`"]
        for setting in SETTINGS:
            result = measure(cfg, *setting)
            cells += ["-", "-"] if result is None else [f"{result[0]:,}", f"{result[1]:,}"]
        rows.append(cells)
    return rows


def zoo_markdown(rows: list[list[str]]) -> str:
    head = [
        "model",
        "params 224x224x3, 1000 classes",
        "mult-adds",
        "params 32x32x1, 10 classes",
        "mult-adds",
    ]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
