"""Seconds per training epoch, from train.log or else from the event files' clock times."""

import re
from pathlib import Path

# EpochSummary's line (callbacks/progress.py): "epoch 3/10  step 90  ...  (12.6s)".
_LINE = re.compile(r"- epoch (\d+)/\d+\s+step \d+\b.*\((\d+(?:\.\d+)?)s\)\s*$")


def from_train_log(path: Path) -> list[tuple[int, float]]:
    """(epoch, seconds) for every EpochSummary line; the last line of an epoch wins (a resumed
    run appends to a new log, so repeats are rare)."""
    times: dict[int, float] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        match = _LINE.search(line)
        if match:
            times[int(match.group(1))] = float(match.group(2))
    return sorted(times.items())


def from_events(run_dir: Path) -> list[tuple[int, float]]:
    """(epoch, seconds between consecutive validation results) from the clock times the event
    files keep; the first epoch is timed from the first event. These include validation, unlike
    EpochSummary's times."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from cnnlab.report.scalars import EVENTS

    ends: list[float] = []
    start = None
    for folder in sorted({p.parent for p in run_dir.rglob(EVENTS)}):
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        tags = events.Tags().get("scalars", [])
        for tag in tags:
            first = min((e.wall_time for e in events.Scalars(tag)), default=None)
            if first is not None:
                start = first if start is None else min(start, first)
        val = sorted(t for t in tags if t.startswith("val/"))
        if val and not ends:  # one point per validation epoch
            ends = sorted(e.wall_time for e in events.Scalars(val[0]))
    times, previous = [], start
    for epoch, end in enumerate(ends, start=1):
        times.append((epoch, end - previous))
        previous = end
    return times


def epoch_seconds(run_dir: Path) -> tuple[list[tuple[int, float]], str]:
    """(epoch, seconds) rows and where they came from, or ([], "") when nothing says."""
    times = from_train_log(run_dir / "train.log")
    if times:
        return times, "train.log (training batches of each epoch)"
    times = from_events(run_dir)
    if times:
        return times, "event file clock times (training and validation of each epoch)"
    return [], ""
