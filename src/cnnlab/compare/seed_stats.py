"""The numbers behind a comparison over seeds: a group's mean with its 95% interval, the paired
tests of one group against another, and the verdict in words.

scipy.stats does the arithmetic; this module only decides which test runs on which numbers.
Runs of two groups are paired by seed (the same seed gives both the same initial weights and data
order), so that a test looks at per-seed differences instead of two independent samples.
"""

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # the significance level of the verdicts
CONFIDENCE = 0.95  # of the interval of a group's mean
WILCOXON_MIN = 6  # fewer matched seeds: the signed-rank test cannot reach p < 0.05 two-sided
NAN = float("nan")


@dataclass(frozen=True)
class Summary:
    """A group's values summed up; std and the interval are NaN for a single value."""

    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1)
    low: float  # 95% Student-t interval of the mean
    high: float


@dataclass(frozen=True)
class Paired:
    """One group against another over the seeds both have."""

    matched: int  # the number of seeds both groups have
    p_value: float  # paired t-test; NaN with fewer than 2 matched seeds
    wilcoxon_p: float  # Wilcoxon signed-rank; NaN with fewer than WILCOXON_MIN matched seeds
    verdict: str


def summarize(values: Sequence[float]) -> Summary:
    """Mean, sample std and the t interval of the mean, the spread of a group of seeds."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return Summary(0, NAN, NAN, NAN, NAN)
    mean = float(x.mean())
    if len(x) < 2:
        return Summary(1, mean, NAN, NAN, NAN)
    std = float(x.std(ddof=1))
    if std == 0:  # scipy refuses a zero scale; identical runs have a zero-width interval
        return Summary(len(x), mean, 0.0, mean, mean)
    low, high = stats.t.interval(CONFIDENCE, len(x) - 1, loc=mean, scale=stats.sem(x))
    return Summary(len(x), mean, std, float(low), float(high))


def verdict(p_value: float, key: str = "seed") -> str:
    """The test's answer in words. A NaN p-value comes from identical values on every seed (no
    difference at all), so it reads as not distinguishable."""
    word = "distinguishable" if p_value < ALPHA else "not distinguishable"
    return f"{word} from {key} noise at {ALPHA:g}"


def _quiet(test, x: np.ndarray, y: np.ndarray) -> float:
    """scipy's p-value, without the RuntimeWarnings it prints for (nearly) constant differences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return float(test(x, y).pvalue)
        except ValueError:  # e.g. Wilcoxon on differences that are all zero, in some versions
            return NAN


def paired_test(a: dict[str, float], b: dict[str, float], key: str = "seed") -> Paired:
    """Group ``a`` against group ``b`` (each ``{seed: value}``) over the seeds both have: a
    paired t-test, and a Wilcoxon signed-rank test where at least WILCOXON_MIN seeds match. With
    fewer than two matched seeds there is no test and the verdict is a dash."""
    seeds = [s for s in a if s in b]
    x = np.array([a[s] for s in seeds], dtype=float)
    y = np.array([b[s] for s in seeds], dtype=float)
    if len(seeds) < 2:
        return Paired(len(seeds), NAN, NAN, "—")
    p = _quiet(stats.ttest_rel, x, y)
    w = _quiet(stats.wilcoxon, x, y) if len(seeds) >= WILCOXON_MIN else NAN
    return Paired(len(seeds), p, w, verdict(p, key))


def pooled_std(samples: Sequence[Sequence[float]]) -> tuple[float, int]:
    """The pooled sample standard deviation of several samples and its degrees of freedom
    (samples of fewer than two values add nothing); (NaN, 0) when none has two."""
    squares, df = 0.0, 0
    for sample in samples:
        if len(sample) >= 2:
            squares += (len(sample) - 1) * float(np.var(sample, ddof=1))
            df += len(sample) - 1
    return (math.sqrt(squares / df), df) if df else (NAN, 0)
