"""Checks of config values that would otherwise fail deep inside Lightning or torch.

A value of the wrong type (``optimizer.lr=abc``) or out of range (``data.batch_size=0``) would
surface as a TypeError or ZeroDivisionError several frames into the training loop. Each rule
below names a key as users type it, what it must be and an example; ``validate`` checks every
key the composed config has (keys it lacks, and null values, are left alone) and raises one
UserError naming the key, the value given and the fix.
"""

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from cnnlab.errors import UserError


@dataclass(frozen=True)
class Rule:
    kind: type  # int: a whole number; float: any number
    low: float  # the smallest value allowed ...
    above: bool  # ... or, when true, the value must be above ``low``
    example: str  # a value that works, for the message
    note: str = ""  # a special value allowed besides the range (below ``low``)
    special: float | None = None

    def accepts(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if value == self.special:
            return True
        return value > self.low if self.above else value >= self.low

    def wants(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        bound = f"above {self.low:g}" if self.above else f"of {self.low:g} or more"
        return f"{what} {bound}{self.note}"


RULES = {
    "optimizer.lr": Rule(float, 0, True, "0.001"),
    "optimizer.weight_decay": Rule(float, 0, False, "0.0001"),
    "optimizer.momentum": Rule(float, 0, False, "0.9"),
    "data.batch_size": Rule(int, 1, False, "32"),
    "data.image_size": Rule(int, 1, False, "32"),
    "data.num_workers": Rule(int, 0, False, "2"),
    "trainer.max_epochs": Rule(int, 1, False, "10", " (or -1: no limit)", -1),
    "trainer.max_steps": Rule(int, 1, False, "1000", " (or -1: no limit)", -1),
    "seed": Rule(int, 0, False, "42"),
}


def validate(cfg: DictConfig) -> None:
    """Raise a UserError for the first value of ``cfg`` that breaks its rule in ``RULES``."""
    for key, rule in RULES.items():
        try:
            value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        except Exception:  # an interpolation that cannot resolve: Hydra/OmegaConf reports it
            continue
        if value is None or rule.accepts(value):
            continue
        text = f", and {value!r} is text" if isinstance(value, str) else ""
        raise UserError(
            f"{key}={value} is not valid: {key} must be {rule.wants()}{text}. Set it to one, "
            f"e.g. {key}={rule.example}."
        )
