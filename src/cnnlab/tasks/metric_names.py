"""Class names as the last part of per-class metric names (``test/recall_<class>``).

TensorBoard replaces every character of a tag other than letters, digits, ``_ . - /`` (and
MLflow refuses most others), and a ``/`` would open a group of its own: so each other
character becomes ``_``. Two names that come out the same are told apart by their index.
"""

import re
from collections.abc import Sequence

_UNSAFE = re.compile(r"[^\w.-]")  # \w: letters of any script, digits and _


def metric_suffixes(names: Sequence[str]) -> list[str]:
    """``names`` made safe for metric names (``T-shirt/top`` -> ``T-shirt_top``), distinct."""
    suffixes: list[str] = []
    for i, name in enumerate(names):
        safe = _UNSAFE.sub("_", str(name)) or str(i)
        if safe in suffixes:
            safe = f"{safe}_{i}"
        suffixes.append(safe)
    return suffixes
