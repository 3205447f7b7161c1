"""cnnlab-compare --mean-over seed and --seeds-needed: each number is scipy's own, and fabricated
sweeps (run folders with .hydra files and metrics.json, nothing trained) get the verdicts their
construction implies."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import stats

from cnnlab.cli.compare import main
from cnnlab.compare.seed_stats import paired_test, pooled_std, summarize
from cnnlab.compare.seeds_needed import seeds_needed

DISTINGUISHABLE = "distinguishable from seed noise at 0.05"
NOT_DISTINGUISHABLE = "not distinguishable from seed noise at 0.05"
COLUMNS = [
    "group", "metric", "n", "seeds", "mean", "std", "ci95_low", "ci95_high", "matched_seeds",
    "p_value", "wilcoxon_p", "verdict", "best",
]  # fmt: skip
SEEDS = [1, 2, 3, 4, 5, 6]
GOOD = [0.951, 0.948, 0.955, 0.946, 0.953, 0.949]  # adam, seeds 1..6
WORSE = [0.902, 0.897, 0.903, 0.899, 0.905, 0.896]  # sgd: about 0.05 lower on every seed
TWIN = [v + e for v, e in zip(GOOD, [1e-4, -1e-4] * 3, strict=True)]  # adam, tiny symmetric noise


def run_folder(path: Path, overrides: list[str], acc: float | None, seed: int = 42) -> None:
    """What cnnlab-train leaves for cnnlab-compare to read (no event files: no curves)."""
    (path / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "data": {"task": "classification"}}
    OmegaConf.save(OmegaConf.create(config), path / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), path / ".hydra" / "overrides.yaml")
    if acc is not None:
        (path / "metrics.json").write_text(json.dumps({"test/acc": acc, "val/acc": acc}))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def md_rows(text: str, first_column: str) -> dict[str, list[str]]:
    """The body rows of the Markdown table whose header starts with ``first_column``, by label."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_interval_is_scipys_t_interval():
    values = [0.91, 0.93, 0.92, 0.95, 0.94]
    s = summarize(values)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert (s.n, s.mean, s.std) == (5, pytest.approx(0.93), pytest.approx(np.std(values, ddof=1)))
    assert (s.low, s.high) == (pytest.approx(low), pytest.approx(high))
    assert np.isnan(summarize([0.9]).std) and np.isnan(summarize([0.9]).low)


def test_paired_tests_are_scipys_over_matched_seeds():
    a = {str(s): v for s, v in zip(SEEDS, WORSE, strict=True)} | {"99": 0.1}
    b = {str(s): v for s, v in reversed(list(zip(SEEDS, GOOD, strict=True)))} | {"7": 0.2}

    six = paired_test(a, b)  # seed 99 only in a, 7 only in b; b in another order

    assert six.matched == 6
    assert six.p_value == pytest.approx(stats.ttest_rel(WORSE, GOOD).pvalue, rel=1e-12)
    assert six.wilcoxon_p == pytest.approx(stats.wilcoxon(WORSE, GOOD).pvalue, rel=1e-12)
    assert six.verdict == DISTINGUISHABLE
    five = paired_test({k: a[k] for k in "12345"}, b)
    assert five.p_value == pytest.approx(stats.ttest_rel(WORSE[:5], GOOD[:5]).pvalue, rel=1e-12)
    assert five.matched == 5 and np.isnan(five.wilcoxon_p)  # no signed-rank test under six
    one = paired_test({"1": 0.5}, b)
    assert one.matched == 1 and np.isnan(one.p_value) and one.verdict == "—"


def test_pooled_std_weights_by_degrees_of_freedom():
    sd, df = pooled_std([[1.0, 2.0, 3.0], [2.0, 4.0], [5.0]])
    assert df == 3 and sd == pytest.approx(np.sqrt((2 * 1.0 + 1 * 2.0) / 3))


@pytest.mark.parametrize("delta, sd", [(0.005, 0.004), (0.01, 0.02), (1.0, 0.3)])
def test_seeds_needed_is_the_first_n_with_power_080(delta, sd):
    def power(n: int) -> float:
        crit = stats.t.ppf(0.975, n - 1)
        nc = delta / sd * np.sqrt(n)
        return stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)

    n = seeds_needed(delta, sd)
    assert n >= 2 and power(n) >= 0.8
    assert n == 2 or power(n - 1) < 0.8
    assert seeds_needed(delta, 0.0) is None


def no_curves_figure(monkeypatch) -> None:
    """Skip drawing comparison.png (18 runs' curves: most of the time, tested elsewhere)."""
    monkeypatch.setattr("cnnlab.compare.comparison.plot_comparison", lambda *a, **k: Path("x"))


def test_sweep_over_seeds_through_the_command_line(tmp_path, capsys, monkeypatch):
    no_curves_figure(monkeypatch)
    sweep = tmp_path / "sweep"
    arms = {"optimizer=sgd": WORSE, "optimizer=adam": GOOD, "optimizer=adam_twin": TWIN}
    job = 0
    for arm, values in arms.items():
        for seed, acc in zip(SEEDS, values, strict=True):
            run_folder(sweep / str(job), ["trainer.max_epochs=3", arm, f"seed={seed}"], acc)
            job += 1

    main([str(sweep), "--mean-over", "seed", "--seeds-needed", "0.01"])

    text = capsys.readouterr().out
    assert text.count("(best)") == 1  # adam and its twin tie to rounding: either may lead
    best = "optimizer=adam" if "optimizer=adam (best)" in text else "optimizer=adam_twin"
    other = ({"optimizer=adam", "optimizer=adam_twin"} - {best}).pop()
    rows = {r["group"]: r for r in read_csv(sweep / "comparison_seeds.csv")}
    assert list(read_csv(sweep / "comparison_seeds.csv")[0]) == COLUMNS
    assert set(rows) == set(arms)
    for arm, values in arms.items():
        row = rows[arm]
        low, high = stats.t.interval(0.95, 5, loc=np.mean(values), scale=stats.sem(values))
        assert (row["metric"], row["n"], row["seeds"]) == ("test/acc", "6", "1 2 3 4 5 6")
        assert float(row["mean"]) == pytest.approx(np.mean(values), abs=1e-12)
        assert float(row["std"]) == pytest.approx(np.std(values, ddof=1), rel=1e-9)
        assert float(row["ci95_low"]) == pytest.approx(low, rel=1e-9)
        assert float(row["ci95_high"]) == pytest.approx(high, rel=1e-9)
    assert (rows[best]["verdict"], rows[best]["best"], rows[best]["p_value"]) == ("—", "yes", "")
    sgd = rows["optimizer=sgd"]
    assert float(sgd["p_value"]) == pytest.approx(stats.ttest_rel(WORSE, arms[best]).pvalue)
    assert float(sgd["wilcoxon_p"]) == pytest.approx(stats.wilcoxon(WORSE, arms[best]).pvalue)
    assert (sgd["matched_seeds"], sgd["verdict"]) == ("6", DISTINGUISHABLE)
    assert rows[other]["verdict"] == NOT_DISTINGUISHABLE

    md = (sweep / "comparison.md").read_text()
    table = md_rows(md, "group")
    assert table["optimizer=sgd"][-1] == DISTINGUISHABLE
    assert table[other][-1] == NOT_DISTINGUISHABLE and table[f"{best} (best)"][-1] == "—"
    assert "test/acc (the classification task's headline test metric" in md
    differences = [np.subtract(arms[arm], arms[best]) for arm in arms if arm != best]
    spread = np.sqrt(np.mean([np.var(d, ddof=1) for d in differences]))  # equal sizes: pooled
    needed = seeds_needed(0.01, spread)
    assert "difference of 0.01 in test/acc" in md and f"**{needed}** seeds per group" in md
    assert "per-seed differences between each group and the best" in md
    assert (sweep / "comparison_seeds.png").stat().st_size > 0
    assert f"wrote {sweep / 'comparison_seeds.csv'}" in text


def test_a_sweep_over_seeds_gets_its_statistics_unasked(tmp_path, capsys, monkeypatch):
    no_curves_figure(monkeypatch)
    sweep = tmp_path / "sweep"
    for job, (arm, seed, acc) in enumerate(
        [("sgd", 1, 0.90), ("sgd", 2, 0.91), ("adam", 1, 0.95), ("adam", 2, 0.96)]
    ):
        run_folder(sweep / str(job), [f"optimizer={arm}", f"seed={seed}"], acc)
    main([str(sweep)])
    rows = {r["group"]: r for r in read_csv(sweep / "comparison_seeds.csv")}
    assert (rows["optimizer=adam"]["best"], rows["optimizer=sgd"]["n"]) == ("yes", "2")
    assert "Over seeds" in (sweep / "comparison.md").read_text()

    one_each = tmp_path / "one_each"  # one seed per setting: nothing to average over
    for job, (arm, seed) in enumerate([("sgd", 1), ("adam", 2)]):
        run_folder(one_each / str(job), [f"optimizer={arm}", f"seed={seed}"], 0.9)
    main([str(one_each)])
    assert not (one_each / "comparison_seeds.csv").exists()


def test_runs_without_seed_overrides_are_groups_of_one(tmp_path, capsys, monkeypatch):
    no_curves_figure(monkeypatch)
    sweep = tmp_path / "sweep"
    for job, (optimizer, acc) in enumerate([("sgd", 0.9), ("adam", 0.95), ("rmsprop", None)]):
        run_folder(sweep / str(job), [f"optimizer={optimizer}"], acc)

    main([str(sweep), "--seeds-needed", "0.01"])  # --mean-over seed implied

    md = (sweep / "comparison.md").read_text()
    table = md_rows(md, "group")
    assert table["optimizer=adam (best)"][:5] == ["1", "42", "0.9500", "–", "–"]
    assert table["optimizer=sgd"] == ["1", "42", "0.9000", "–", "–", "1", "–", "–", "—"]
    assert table["optimizer=rmsprop"][:2] == ["0", ""]
    assert "2 groups have one run (n = 1): no spread, no interval and no test." in md
    assert "1 run without test/acc (unfinished, or of another task) left out." in md
    assert "cannot be estimated, no group has two runs" in md
    rows = read_csv(sweep / "comparison_seeds.csv")
    assert [(r["n"], r["std"], r["ci95_low"]) for r in rows[:2]] == [("1", "", "")] * 2


@pytest.mark.parametrize("args", [["--seeds-needed", "0"], ["--seeds-needed", "x"]])
def test_seeds_needed_wants_a_positive_difference(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), *args])
    assert exit_info.value.code == 2
    assert "expected a number above 0, e.g. 0.005" in capsys.readouterr().err


def test_metric_asked_for_must_exist(tmp_path, capsys):
    run_folder(tmp_path / "s" / "0", ["seed=1"], 0.9)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "s"), "--mean-over", "seed", "--metric", "test/nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "No run has the metric test/nope. The runs have: test/acc, val/acc." in err
    assert not (tmp_path / "s" / "comparison.md").exists()
