"""From Hydra's sweep syntax to an Optuna search space, and from a trial back to overrides.

| Hydra override                   | Optuna distribution                                |
| -------------------------------- | -------------------------------------------------- |
| ``choice(a, b, c)`` or ``a,b,c`` | ``CategoricalDistribution([a, b, c])``             |
| ``interval(lo, hi)``             | ``FloatDistribution(lo, hi)``                      |
| ``tag(log, interval(lo, hi))``   | ``FloatDistribution(lo, hi, log=True)``            |
| ``tag(int, interval(lo, hi))``   | ``IntDistribution(lo, hi)`` (with ``log`` too)     |
| ``range(start, stop, step)``     | ``IntDistribution`` with that step (floats: choice) |
| a plain value                    | none: the same override for every trial            |

The space is the sweeper's ``params`` with the command line's arguments on top: an argument
for a key that ``params`` searches replaces it (``optimizer.lr=1e-3`` fixes it,
``optimizer.lr=interval(1e-3,1e-2)`` narrows it).
"""

import math
import re

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep

from cnnlab.errors import UserError


def search_space(params: dict | None, arguments: list[str]) -> tuple[dict, list[str]]:
    """(distributions by key, fixed overrides) for ``params`` (key -> Hydra value string) and
    the command line's ``arguments``."""
    lines = [f"{key}={value}" for key, value in (params or {}).items()]
    parsed = OverridesParser.create().parse_overrides(lines + list(arguments))
    by_key: dict[str, Override] = {}
    for override in parsed:  # a later one (the command line) wins
        by_key[override.key_or_group] = override
    space, fixed = {}, []
    for key, override in by_key.items():
        if override.is_sweep_override():
            space[key] = distribution(key, override.value())
        else:
            fixed.append(override.input_line)
    return space, fixed


def distribution(key: str, sweep):
    """The Optuna distribution for one of Hydra's sweep values."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    tags = getattr(sweep, "tags", set()) or set()
    if isinstance(sweep, ChoiceSweep):
        return CategoricalDistribution(list(sweep.list))
    if isinstance(sweep, IntervalSweep):
        log = "log" in tags
        if "int" in tags:
            return IntDistribution(int(sweep.start), int(sweep.end), log=log)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log)
    if isinstance(sweep, RangeSweep):
        start, stop, step = sweep.start, sweep.stop, sweep.step
        if all(isinstance(v, int) for v in (start, stop, step)) and step > 0:
            last = start + (stop - 1 - start) // step * step
            return IntDistribution(start, last, step=step)
        count = math.ceil((stop - start) / step)
        return CategoricalDistribution([round(start + i * step, 12) for i in range(count)])
    raise UserError(
        f"hydra.sweeper.params.{key}: {sweep} is not a sweep Optuna can search (use "
        "choice(...), interval(lo, hi), tag(log, interval(lo, hi)) or range(...))."
    )


_PLAIN = re.compile(r"^[\w./:-]+$")


def as_override(key: str, value) -> str:
    """``key=value`` as Hydra reads it back to the same value."""
    if isinstance(value, str) and not _PLAIN.match(value):
        value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    elif isinstance(value, float):
        value = repr(value)
    elif value is None:
        value = "null"
    return f"{key}={value}"
