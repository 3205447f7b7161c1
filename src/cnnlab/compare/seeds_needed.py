"""How many seeds a comparison needs: the smallest number of paired seeds at which a two-sided
paired t-test at ALPHA finds a true difference ``delta`` with probability POWER.

The power of the paired t-test on n per-seed differences with standard deviation ``sd`` is the
chance that a noncentral t variable (n - 1 degrees of freedom, noncentrality delta / sd * sqrt(n))
lands beyond the test's critical value; scipy.stats.nct gives it. Power grows with n, so the
first n that reaches POWER is the answer.
"""

import math

from scipy import stats

from cnnlab.compare.seed_stats import ALPHA

POWER = 0.8
MOST_SEEDS = 10_000  # give up beyond this: the difference is lost in the noise


def paired_power(n: int, delta: float, sd: float, alpha: float = ALPHA) -> float:
    """The power of a two-sided paired t-test on ``n`` differences of standard deviation ``sd``
    when their true mean is ``delta``."""
    df = n - 1
    noncentrality = abs(delta) / sd * math.sqrt(n)
    critical = stats.t.ppf(1 - alpha / 2, df)
    above = stats.nct.sf(critical, df, noncentrality)
    return float(above + stats.nct.cdf(-critical, df, noncentrality))


def seeds_needed(delta: float, sd: float, power: float = POWER, alpha: float = ALPHA) -> int | None:
    """The fewest paired seeds (2 or more) whose test reaches ``power``; None past MOST_SEEDS or
    when ``sd`` is not a positive number (no spread observed: nothing to estimate from)."""
    if not (sd > 0 and math.isfinite(sd)) or delta == 0:
        return None
    for n in range(2, MOST_SEEDS + 1):
        if paired_power(n, delta, sd, alpha) >= power:
            return n
    return None
