"""Runs grouped for statistics over seeds: the runs whose overrides are the same once the
``seed=...`` override (or another KEY, as --mean-over names it) is taken out form one group.

Each run's seed is its ``seed=`` override or, without one, the ``seed`` of its composed config,
so that runs trained with the default seed still say which seed they had.
"""

import math
from dataclasses import dataclass, field

from omegaconf import OmegaConf

from cnnlab.compare.runs import Run


@dataclass
class Group:
    """The runs of one arm of a comparison and their values of the metric compared."""

    label: str  # the overrides its runs share beyond those common to all runs
    values: list[float] = field(default_factory=list)  # one per run that has the metric
    by_seed: dict[str, float] = field(default_factory=dict)  # seed -> value, for pairing
    seeds: list[str] = field(default_factory=list)  # the seed of every run with a value
    missing: int = 0  # runs of the group without the metric (unfinished, another task)


def _strip(override: str) -> str:
    """``+seed=3`` and ``++seed=3`` set the key as ``seed=3`` does."""
    return override.lstrip("+")


def seed_of(run: Run, key: str = "seed") -> str | None:
    """The run's ``key`` as text: from its override, else from its .hydra/config.yaml."""
    for override in run.overrides:
        name, _, value = _strip(override).partition("=")
        if name == key:
            return value
    try:
        value = OmegaConf.select(OmegaConf.load(run.path / ".hydra" / "config.yaml"), key)
    except Exception:  # an unreadable config only costs the seed: the run cannot be paired
        return None
    return None if value is None else str(value)


def group_key(run: Run, key: str, shared: list[str]) -> str:
    """The overrides that make the run's group: its own, less ``key=...`` and those that all
    runs share (which say nothing about the group)."""
    own = [o for o in run.overrides if o not in shared and _strip(o).partition("=")[0] != key]
    return " ".join(own) or "(all runs)"


def repeats_over(runs: list[Run], key: str, shared: list[str]) -> bool:
    """Whether the runs repeat a setting over ``key``: some group of runs that differ only by
    ``key`` holds at least two runs with different values of it (a sweep such as
    ``optimizer=sgd,adam seed=1,2,3``)."""
    values: dict[str, set[str]] = {}
    for run in runs:
        if any(_strip(o).partition("=")[0] == key for o in run.overrides):
            values.setdefault(group_key(run, key, shared), set()).add(seed_of(run, key))
    return any(len(v) > 1 for v in values.values())


def _finite(value) -> bool:
    """A number that counts: metrics.json stores NaN and inf as text, flags as true/false."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def group_runs(runs: list[Run], metric: str, key: str, shared: list[str]) -> list[Group]:
    """The groups in the order their first run came; a value that is not a finite number (a run
    that did not finish, or a NaN stored as text) is counted as missing. A seed run twice in a
    group is paired by its first run."""
    groups: dict[str, Group] = {}
    for run in runs:
        label = group_key(run, key, shared)
        group = groups.setdefault(label, Group(label))
        value = run.metrics.get(metric)
        if not _finite(value):
            group.missing += 1
            continue
        seed = seed_of(run, key)
        group.values.append(float(value))
        group.seeds.append("?" if seed is None else seed)
        if seed is not None:
            group.by_seed.setdefault(seed, float(value))
    return list(groups.values())
