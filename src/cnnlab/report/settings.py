"""What a report is computed with: how many test images, and the detection thresholds.

The thresholds are the run's own ``report.iou_threshold`` and ``report.score_threshold`` (the
values its TensorBoard confusion matrices used; 0.5 each for runs made before they existed),
unless ``cnnlab-report RUN_DIR report.iou_threshold=0.7`` says otherwise.
"""

from dataclasses import dataclass, fields, replace

from cnnlab.errors import UserError


@dataclass(frozen=True)
class ReportSettings:
    max_images: int | None = None  # analyse only the first N test images (None: all)
    iou_threshold: float = 0.5  # a detection finds an object when their IoU is at least this
    score_threshold: float = 0.5  # detections scoring less are left out of the matrix


THRESHOLDS = tuple(f.name for f in fields(ReportSettings) if f.name.endswith("_threshold"))


def parse_value(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"report.{key}={text}: give a number between 0 and 1.") from None
    if not 0 <= value <= 1:
        raise UserError(f"report.{key}={text}: give a number between 0 and 1.")
    return value


def report_settings(
    run_config, overrides: list[str] | tuple[str, ...] = (), max_images: int | None = None
) -> ReportSettings:
    """The settings of a run whose composed config is ``run_config`` (a DictConfig), with
    ``overrides`` like ``report.iou_threshold=0.7`` applied; a UserError names a bad one."""
    from omegaconf import OmegaConf

    settings = ReportSettings(max_images=max_images)
    stored = OmegaConf.select(run_config, "report", default=None) or {}
    values = {k: stored[k] for k in THRESHOLDS if k in stored}
    for item in overrides:
        key, sep, text = item.partition("=")
        name = key.removeprefix("report.")
        if not sep or not key.startswith("report.") or name not in THRESHOLDS:
            choices = ", ".join(f"report.{k}=VALUE" for k in THRESHOLDS)
            raise UserError(f"{item}: cnnlab-report takes {choices} after RUN_DIR.")
        values[name] = text
    return replace(settings, **{k: parse_value(k, str(v)) for k, v in values.items()})
