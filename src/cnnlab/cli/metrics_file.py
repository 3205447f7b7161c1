"""RUN_DIR/metrics.json: the final metrics of a run as one flat JSON object."""

import json
import logging
import math
from pathlib import Path

log = logging.getLogger("cnnlab")


def write_metrics(run_dir: str, metrics: dict) -> Path:
    """Numbers as floats (NaN and inf as strings, which JSON lacks), flags (``stopped_early``)
    as true/false, keys sorted."""
    clean = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            clean[key] = value
            continue
        value = float(value)
        clean[key] = (
            int(value)
            if key in ("epoch", "global_step", "params")
            else (value if math.isfinite(value) else str(value))
        )
    path = Path(run_dir) / "metrics.json"
    path.write_text(json.dumps(dict(sorted(clean.items())), indent=2) + "\n")
    return path


def finish_run(run_dir: str, metrics: dict, is_global_zero: bool = True) -> None:
    """Write metrics.json (rank 0 only: under DDP every rank gets here) and say where it went."""
    if not is_global_zero:
        return
    path = write_metrics(run_dir, metrics)
    shown = ", ".join(f"{k}={metrics[k]:.4f}" for k in sorted(metrics) if k.startswith("test/"))
    log.info("%s -> %s", shown, path)
    log.info("Run folder: %s", run_dir)
