"""Config resolvers: what each task's checkpoints are ranked by, chosen from ``data.task``.

``${task_monitor:${data.task}}`` is the validation metric the best checkpoint is chosen by;
``${task_checkpoint_name:${data.task}}`` the best checkpoint's file-name pattern. Registered when
cnnlab.cli.app is imported, so every entry point and test composes with them.
"""

from omegaconf import OmegaConf

# task -> (monitored metric, its short name in the best checkpoint's file name)
TASK_METRICS = {
    "classification": ("val/acc", "acc"),
    "detection": ("val/map", "map"),
    "segmentation": ("val/miou", "miou"),
}


def task_monitor(task: str) -> str:
    return TASK_METRICS.get(task, TASK_METRICS["classification"])[0]


def task_checkpoint_name(task: str) -> str:
    """``best-epoch007-acc0.9889`` style: no "=", so the path stays a valid Hydra override."""
    metric, short = TASK_METRICS.get(task, TASK_METRICS["classification"])
    return f"best-epoch{{epoch:03d}}-{short}{{{metric}:.4f}}"


def register() -> None:
    for name, fn in (
        ("task_monitor", task_monitor),
        ("task_checkpoint_name", task_checkpoint_name),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
