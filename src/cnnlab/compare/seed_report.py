"""The statistics over seeds in words and tables: the "Over seeds" section of comparison.md,
comparison_seeds.csv and the --seeds-needed estimate.

One row per group of runs that differ only by seed: n, mean, sample std and the 95% interval of
the metric compared, and each group's paired tests against the best group with a verdict.
"""

import csv
import io
import math
from dataclasses import dataclass

from cnnlab.compare.runs import Run
from cnnlab.compare.seed_groups import Group
from cnnlab.compare.seed_stats import (
    ALPHA,
    WILCOXON_MIN,
    Paired,
    Summary,
    paired_test,
    pooled_std,
    summarize,
)
from cnnlab.compare.seeds_needed import MOST_SEEDS, POWER, seeds_needed
from cnnlab.errors import UserError
from cnnlab.tasks.table import TASKS

CSV_COLUMNS = (
    "group", "metric", "n", "seeds", "mean", "std", "ci95_low", "ci95_high", "matched_seeds",
    "p_value", "wilcoxon_p", "verdict", "best",
)  # fmt: skip


@dataclass(frozen=True)
class SeedRow:
    """One group's line: its summary and, unless it is the best group, its test against it."""

    group: Group
    summary: Summary
    paired: Paired | None
    best: bool


def seed_metric(runs: list[Run], requested: str | None) -> tuple[str, str]:
    """The metric compared over seeds and why it is that one: the one asked for (it must exist in
    some run), else the headline test metric of the runs' most common task (test/acc, test/map,
    test/miou: what a run is summed up by)."""
    available = {key for run in runs for key in run.metrics}
    if requested:
        if requested not in available:
            raise UserError(
                f"No run has the metric {requested}. The runs have: "
                f"{', '.join(sorted(available)) or 'no metrics at all'}. Give --metric NAME."
            )
        return requested, "asked for with --metric"
    tasks = [r.task for r in runs]
    task = TASKS.get(max(tasks, key=tasks.count), TASKS["classification"])
    return task.headline, f"the {task.name} task's headline test metric; --metric picks another"


def lower_is_better(metric: str) -> bool:
    """Losses and times are better low; accuracies, mAP and IoU high."""
    return "loss" in metric or metric.endswith(("ms_per_image", "time_s"))


def seed_rows(groups: list[Group], metric: str, key: str = "seed") -> list[SeedRow]:
    """Summarize every group and test it against the best one (highest mean, or lowest for a
    loss; the first wins a tie). Groups without a value are kept, with no best among them."""
    summaries = [summarize(g.values) for g in groups]
    sign = -1 if lower_is_better(metric) else 1
    valued = [i for i, s in enumerate(summaries) if s.n]
    best = max(valued, key=lambda i: (sign * summaries[i].mean, -i)) if valued else None
    rows = []
    for i, (group, summary) in enumerate(zip(groups, summaries, strict=True)):
        paired = None
        if best is not None and i != best and summary.n:
            paired = paired_test(group.by_seed, groups[best].by_seed, key)
        rows.append(SeedRow(group, summary, paired, i == best))
    return rows


def _number(value: float, places: int = 4) -> str:
    return "–" if math.isnan(value) else f"{value:.{places}f}"


def _p(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3g}"


def _seed_list(group: Group) -> str:
    numeric = all(s.lstrip("-").isdigit() for s in group.seeds)
    return " ".join(sorted(group.seeds, key=int) if numeric else sorted(group.seeds))


def _verdict(row: SeedRow) -> str:
    return row.paired.verdict if row.paired else "—"


def seed_markdown(rows: list[SeedRow], metric: str, why: str, key: str = "seed") -> str:
    """The section for comparison.md: what was compared and how, the table, notes on gaps."""
    best = next((r for r in rows if r.best), None)
    side = "lowest" if lower_is_better(metric) else "highest"
    lines = [
        f"## Over {key}s: {metric}",
        "",
        f"{metric} ({why}) of the runs grouped by their overrides without `{key}=`: n runs, "
        "their mean, sample standard deviation (std) and the 95% Student-t interval of the mean.",
    ]
    if best:
        lines[-1] += (
            f" Each group against the best, **{best.group.label}** (the {side} mean), over the "
            f"{key}s both ran: a paired t-test (p_value) and, where at least {WILCOXON_MIN} {key}s "
            f"match, the Wilcoxon signed-rank test (wilcoxon_p). The verdict reads the t-test at "
            f"{ALPHA:g}; a dash where fewer than two {key}s match."
        )
    header = ["group", "n", f"{key}s", "mean", "std", "95% interval", "matched", "p_value"]
    header += ["wilcoxon_p", "verdict"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        s, p = row.summary, row.paired
        interval = "–" if math.isnan(s.low) else f"[{s.low:.4f}, {s.high:.4f}]"
        cells = [row.group.label + " (best)" * row.best, str(s.n), _seed_list(row.group)]
        cells += [_number(s.mean), _number(s.std), interval]
        cells += [str(p.matched), _p(p.p_value), _p(p.wilcoxon_p)] if p else ["–"] * 3
        cells.append(_verdict(row))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", *_gaps(rows, metric, key)]
    return "\n".join(lines).rstrip() + "\n"


def _gaps(rows: list[SeedRow], metric: str, key: str) -> list[str]:
    """Sentences about what the table cannot say: groups of one run, runs without the metric."""
    notes = []
    single = [r for r in rows if r.summary.n == 1]
    if single:
        scope = "Every group has" if len(single) == len(rows) else f"{len(single)} groups have"
        notes.append(
            f"{scope} one run (n = 1): no spread, no interval and no test. Train more {key}s, "
            f"e.g. `cnnlab-train -m ... {key}=1,2,3,4,5`."
        )
    missing = sum(r.group.missing for r in rows)
    if missing:
        runs = f"{missing} run{'s' * (missing != 1)}"
        notes.append(f"{runs} without {metric} (unfinished, or of another task) left out.")
    return [" ".join(notes), ""] if notes else []


def seed_csv(rows: list[SeedRow], metric: str) -> str:
    """comparison_seeds.csv: the table's rows at full precision, an empty cell for no value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        s, p = row.summary, row.paired
        numbers = [s.mean, s.std, s.low, s.high]
        tests = [p.p_value, p.wilcoxon_p] if p else [math.nan] * 2
        writer.writerow(
            [row.group.label, metric, s.n, _seed_list(row.group)]
            + ["" if math.isnan(v) else repr(float(v)) for v in numbers]
            + ["" if p is None else p.matched]
            + ["" if math.isnan(v) else repr(float(v)) for v in tests]
            + [_verdict(row), "yes" if row.best else ""]
        )
    return buffer.getvalue()


def difference_spread(rows: list[SeedRow], key: str = "seed") -> tuple[float, str] | None:
    """The standard deviation of a per-seed difference, and where it came from: pooled over the
    differences between each group and the best on their matched seeds; else, when no group
    shares two seeds with the best, sqrt(2) times the pooled spread of the runs within groups
    (the difference of two independent runs). None when neither can be had."""
    best = next((r.group.by_seed for r in rows if r.best), {})
    differences = [
        [r.group.by_seed[s] - best[s] for s in r.group.by_seed if s in best]
        for r in rows
        if not r.best
    ]
    sd, df = pooled_std(differences)
    if df:
        return sd, (
            f"the pooled standard deviation of the per-{key} differences between each group "
            f"and the best, {sd:.4f} ({df} degrees of freedom)"
        )
    sd, df = pooled_std([r.group.values for r in rows])
    if df:
        return math.sqrt(2) * sd, (
            f"√2 × {sd:.4f}, the pooled standard deviation of the runs within groups ({df} "
            f"degrees of freedom), as no group shares two {key}s with the best"
        )
    return None


def seeds_needed_text(rows: list[SeedRow], delta: float, metric: str, key: str = "seed") -> str:
    """The --seeds-needed paragraph: how many seeds per group would tell apart ``delta``."""
    test = f"paired t-test, two-sided, alpha {ALPHA:g}, power {POWER:g}"
    spread = difference_spread(rows, key)
    if spread is None:
        return (
            f"{key.capitalize()}s needed for a difference of {delta:g} in {metric}: cannot be "
            f"estimated, no group has two runs to measure the spread from."
        )
    sd, source = spread
    n = seeds_needed(delta, sd)
    if n is not None:
        answer = f"**{n}** {key}s per group"
    elif sd > 0:
        answer = f"more than {MOST_SEEDS:,}"
    else:
        answer = "cannot be estimated (no spread observed)"
    return (
        f"{key.capitalize()}s needed to tell apart a difference of {delta:g} in {metric} "
        f"({test}): {answer}. Spread used: {source}."
    )
