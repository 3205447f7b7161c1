"""RUN_DIR/metrics.json: the final metrics of a run as one flat JSON object."""

import json
import math
from pathlib import Path


def write_metrics(run_dir: str, metrics: dict) -> Path:
    """Numbers as floats (NaN and inf as strings, which JSON lacks), keys sorted."""
    clean = {}
    for key, value in metrics.items():
        value = float(value)
        clean[key] = (
            int(value)
            if key in ("epoch", "global_step")
            else (value if math.isfinite(value) else str(value))
        )
    path = Path(run_dir) / "metrics.json"
    path.write_text(json.dumps(dict(sorted(clean.items())), indent=2) + "\n")
    return path
