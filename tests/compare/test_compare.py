"""cnnlab-compare: runs found under run and sweep folders, the table, the figure, the errors.

One test trains two tiny real runs; the others lay out run folders by hand, with event files
written by torch's SummaryWriter, the way cnnlab-train leaves them.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from cnnlab.cli.compare import main
from cnnlab.cli.train import train
from cnnlab.compare.comparison import compare
from cnnlab.compare.curves import epoch_curve
from cnnlab.report.scalars import per_epoch, read_scalars

TEXTBOOK = [
    "textbook/sgd",
    "textbook/momentum",
    "textbook/adagrad",
    "textbook/rmsprop",
    "textbook/adam",
    "textbook/adadelta",
]


def write_hydra_files(run: Path, overrides: list[str], config: dict | None = None) -> None:
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(config or {"seed": 42}), run / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), run / ".hydra" / "overrides.yaml")


def fake_run(
    run: Path,
    overrides: list[str],
    metrics: dict | None = None,
    losses: list[float] = (2.3, 1.0, 0.5, 0.3),
    val_acc: list[float] = (0.5, 0.8),
    task: str = "classification",
) -> Path:
    """A finished run folder: Hydra's files, metrics.json and event files as Lightning logs them
    (train/loss every 5 steps, the task's validation metric (val/acc, val/map, val/miou) and the
    0-based epoch at the last step of each epoch)."""
    from torch.utils.tensorboard import SummaryWriter

    val_tag = {"detection": "val/map", "segmentation": "val/miou"}.get(task, "val/acc")
    write_hydra_files(run, overrides, {"seed": 42, "data": {"task": task}})
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    writer = SummaryWriter(str(run / "tensorboard"))
    steps_per_epoch = 5 * len(losses) // len(val_acc)
    for i, loss in enumerate(losses):
        writer.add_scalar("train/loss", loss, 5 * i + 4)
    for epoch, acc in enumerate(val_acc):
        step = steps_per_epoch * (epoch + 1) - 1
        writer.add_scalar(val_tag, acc, step)
        writer.add_scalar("epoch", epoch, step)
    writer.close()
    return run


def finished(acc: float, epoch: int = 2) -> dict:
    return {"test/acc": acc, "test/loss": 1 - acc, "val/acc": acc - 0.01, "epoch": epoch, "lr": 0.1}


def table_rows(text: str) -> list[list[str]]:
    """The cells of every body row of the Markdown table in ``text``."""
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def assert_png(path: Path) -> None:
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 100


def assert_csv_matches(folder: Path) -> None:
    """comparison.csv holds the rows of comparison.md: the same runs, columns and values (to the
    four places the Markdown shows), an empty cell where the Markdown has a dash."""
    md_lines = [line for line in (folder / "comparison.md").read_text().splitlines()]
    md_header = next(line for line in md_lines if line.startswith("| run |"))
    md_columns = [cell.strip() for cell in md_header.strip("|").split("|")]
    md_rows = table_rows("\n".join(md_lines[md_lines.index(md_header) :]))
    with (folder / "comparison.csv").open(newline="") as f:
        csv_rows = list(csv.reader(f))
    assert csv_rows[0] == [*md_columns, "path"]
    assert len(csv_rows) - 1 == len(md_rows)
    for md_row, csv_row in zip(md_rows, csv_rows[1:], strict=True):
        assert Path(csv_row[-1]).is_dir()
        for column, md_cell, csv_cell in zip(md_columns, md_row, csv_row, strict=False):
            if md_cell == "–":
                assert csv_cell == ""
            elif column in ("run", "best"):
                assert csv_cell == md_cell
            else:
                assert float(csv_cell) == pytest.approx(
                    float(md_cell), abs=0.051 if column == "time_s" else 5e-5
                )


@pytest.mark.slow  # about 1 s or more: the fast tier stays under 2 minutes
def test_two_real_runs_compared(make_cfg, tmp_path):
    sweep = tmp_path / "sweep"
    results = {}
    for job, optimizer in enumerate(["sgd", "adam"]):
        overrides = [f"optimizer={optimizer}", "trainer.max_epochs=1"]
        run = sweep / str(job)
        cfg = make_cfg([*overrides, "trainer.enable_model_summary=false"], run_dir=run)
        write_hydra_files(run, overrides, OmegaConf.to_container(cfg))
        results[optimizer] = train(cfg)

    text, written = compare([sweep])

    assert written == [sweep / "comparison.md", sweep / "comparison.csv", sweep / "comparison.png"]
    assert (sweep / "comparison.md").read_text() == text
    assert "Common to all runs: `trainer.max_epochs=1`." in text
    header = "| run | test/acc | test/loss | test/acc_top5 | test/balanced_acc | test/f1_macro |"
    header += " val/acc | val/loss | epoch | params | time_s | best |"
    assert header in text.splitlines()
    rows = table_rows(text)
    assert [row[0] for row in rows] == ["optimizer=sgd", "optimizer=adam"]
    for row, optimizer in zip(rows, ["sgd", "adam"], strict=True):
        assert float(row[1]) == pytest.approx(results[optimizer]["test/acc"], abs=1e-4)
        cells = dict(zip(header.strip("| ").split(" | "), row, strict=True))
        assert cells["epoch"] == "1"  # epochs trained
        assert float(cells["params"]) > 0
        assert float(cells["time_s"]) > 0  # seconds, from the event files' clock times here
    best = max(results, key=lambda o: results[o]["val/acc"])  # one epoch: its val/acc is the peak
    assert [row[-1] for row in rows] == ["yes" if o == best else "" for o in ("sgd", "adam")]
    assert_csv_matches(sweep)
    assert_png(sweep / "comparison.png")
    curves = read_scalars(sweep / "0")
    assert len(curves["train/loss"]) == 4  # 20 steps, logged every 5
    # the hparams summary logs val/acc once more after training; that point is no epoch
    assert epoch_curve(curves, "val/acc")[:, 0].tolist() == [1.0]


def test_sweep_jobs_in_numeric_order_labelled_by_what_differs(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for job in (0, 1, 2, 10):
        fake_run(sweep / str(job), ["experiment=x", f"optimizer={job}"], finished(0.5 + job / 100))
    (sweep / "multirun.yaml").write_text("{}\n")

    main([str(sweep)])

    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [row[0] for row in rows] == ["optimizer=0", "optimizer=1", "optimizer=2", "optimizer=10"]
    assert rows[3][1:3] == ["0.6000", "0.4000"]  # test/acc, test/loss to four places
    assert "Common to all runs: `experiment=x`." in out
    assert f"wrote {sweep / 'comparison.png'}" in out
    assert_png(sweep / "comparison.png")


def test_run_folders_write_into_the_first_folder_given(tmp_path, monkeypatch):
    a = fake_run(tmp_path / "runs" / "a", ["optimizer=sgd"], finished(0.9))
    b = fake_run(tmp_path / "runs" / "b", ["optimizer=sgd"], finished(0.8))
    monkeypatch.chdir(tmp_path)

    text, written = compare([b, a, b])  # a run given twice is compared once

    assert [row[0] for row in table_rows(text)] == ["b", "a"]  # same overrides: folder names
    assert written == [b / "comparison.md", b / "comparison.csv", b / "comparison.png"]
    assert_png(b / "comparison.png")
    assert not list(tmp_path.glob("comparison.*")) and not list(a.glob("comparison.*"))


def test_metrics_option_picks_the_columns(tmp_path, capsys):
    run = fake_run(tmp_path / "r", ["seed=1"], finished(0.9, epoch=7))
    main([str(run), "--metrics", "epoch,test/acc", "lr", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert "| run | epoch | test/acc | lr | time_s | best |" in out
    [row] = table_rows(out)
    assert row[:4] == ["r", "7", "0.9000", "0.1000"]  # one run: its folder names it
    assert row[-1] == "yes"  # the only run is the best one
    assert (tmp_path / "o" / "comparison.csv").is_file() and not (run / "comparison.md").exists()


def test_unfinished_run_gets_dashes_and_a_note(tmp_path):
    fake_run(tmp_path / "s" / "0", ["optimizer=sgd"], finished(0.9))
    fake_run(tmp_path / "s" / "1", ["optimizer=adam"], metrics=None)
    text, _ = compare([tmp_path / "s"])
    assert table_rows(text)[1][:5] == ["optimizer=adam", "–", "–", "–", "–"]
    assert table_rows(text)[1][-1] == ""  # the same val/acc curve: a tie goes to the first run
    assert "no metrics.json: the run did not finish" in text


@pytest.mark.slow  # ~1.1 s
def test_read_scalars_keeps_every_point(tmp_path):
    losses = list(np.linspace(2.3, 0.1, 10_050))  # more than TensorBoard's default 10,000
    run = fake_run(tmp_path / "long", ["x=1"], losses=losses, val_acc=[0.5, 0.6, 0.7])
    curves = read_scalars(run)
    assert len(curves["train/loss"]) == 10_050
    assert np.all(np.diff(curves["train/loss"][:, 0]) > 0)
    assert per_epoch(curves, "val/acc")[:, 0].tolist() == [1, 2, 3]  # 0-based epoch + 1
    assert per_epoch(curves, "val/acc")[:, 1] == pytest.approx([0.5, 0.6, 0.7])
    del curves["epoch"]  # without Lightning's epoch tag the points are counted
    assert per_epoch(curves, "val/acc")[:, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "No such folder: "),
        ("empty", "holds no runs"),
        ("bad_metric", "No run has the metric nope. The runs have: epoch, lr, test/acc"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, layout, message):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    folder = tmp_path / layout
    args = [str(folder)]
    if layout == "empty":
        (folder / "not_a_run").mkdir(parents=True)
    if layout == "bad_metric":
        fake_run(folder, ["a=1"], finished(0.9))
        args += ["--metrics", "nope"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab-compare: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (folder / "comparison.md").exists()


@pytest.mark.slow
def test_optimizer_comparison_experiment_is_a_six_job_sweep():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.utils import get_class

    from cnnlab.factory.configs import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", ["experiment=optimizer_comparison"], return_hydra_config=True)
        rules = [compose("train", [f"optimizer={name}"]).optimizer for name in TEXTBOOK]
    GlobalHydra.instance().clear()

    sweep = cfg.hydra.sweeper.params.optimizer
    assert sweep.split(",") == TEXTBOOK
    override = OverridesParser.create().parse_overrides([f"optimizer={sweep}"])[0]
    assert list(override.sweep_string_iterator()) == TEXTBOOK  # six jobs, in this order
    assert [get_class(r._target_).__name__ for r in rules] == [
        "SGD",
        "Momentum",
        "AdaGrad",
        "RMSProp",
        "Adam",
        "Adadelta",
    ]
    assert cfg.scheduler.name == "none" and cfg.scheduler.warmup_epochs == 0  # constant rate
    assert cfg.model._target_ == "cnnlab.models.lenet.lenet"
    assert cfg.data._target_.endswith("DigitsDataModule") and cfg.seed == 42
    assert cfg.trainer.max_epochs <= 10  # six jobs stay short on a CPU
    assert "optimizer_comparison" in cfg.hydra.sweep.dir


@pytest.mark.slow
def test_console_script_error_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    script = Path(sys.executable).parent / "cnnlab-compare"
    proc = subprocess.run(
        [str(script), str(tmp_path / "nowhere")], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (
        f"cnnlab-compare: error: No such folder: {tmp_path / 'nowhere'}. Give run folders "
        "(outputs/train/<time>) or sweep folders (the one cnnlab-train -m printed) to compare."
    )


def test_mean_over_seeds_groups_the_other_overrides():
    from cnnlab.compare.runs import Run
    from cnnlab.compare.table import mean_table

    runs = [
        Run(
            Path(f"r{i}"),
            metrics={"test/acc": acc, "epoch": 10, "params": 61706},
            label=f"finetune={arm} seed={seed}",
        )
        for i, (arm, seed, acc) in enumerate(
            [("full", 0, 0.8), ("full", 1, 0.9), ("scratch", 0, 0.5), ("scratch", 1, 0.7)]
        )
    ]
    text = mean_table(runs, ["test/acc", "epoch", "params"], "seed")
    assert "| finetune=full | 2 | 0.8500 ± 0.0707 | 10 | 61706 |" in text  # counts as they are
    assert "| finetune=scratch | 2 | 0.6000 ± 0.1414 | 10 | 61706 |" in text


def test_time_comes_from_train_log_else_from_the_event_files(tmp_path):
    logged = fake_run(tmp_path / "s" / "0", ["optimizer=sgd"], finished(0.9))
    (logged / "train.log").write_text(
        "[2026-11-27 10:13:51,924][cnnlab][INFO] - Run folder: x\n"
        "a line printed without a time stamp\n"
        "[2026-11-27 10:15:07,424][cnnlab][INFO] - Run folder: x\n"
    )
    fake_run(tmp_path / "s" / "1", ["optimizer=adam"], finished(0.8))

    text, _ = compare([tmp_path / "s"])

    rows = table_rows(text)
    assert rows[0][-2] == "75.5"  # 10:13:51.924 to 10:15:07.424
    assert float(rows[1][-2]) >= 0  # between its first and last event: milliseconds here
    assert "time_s: wall-clock seconds" in text
    assert_csv_matches(tmp_path / "s")


def captured_figure(monkeypatch) -> list:
    """Keep the matplotlib figures that get saved, to look at what was drawn."""
    from matplotlib.figure import Figure

    figures, save = [], Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def test_best_run_is_the_highest_peak_marked_in_tables_and_figure(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    fake_run(sweep / "0", ["optimizer=sgd"], finished(0.9), val_acc=[0.5, 0.8, 0.85])
    fake_run(sweep / "1", ["optimizer=adam"], finished(0.7), val_acc=[0.6, 0.95, 0.7])
    fake_run(sweep / "2", ["optimizer=rmsprop"], finished(0.8), val_acc=[0.4, 0.6, 0.9])
    figures = captured_figure(monkeypatch)

    text, _ = compare([sweep])

    # adam peaked highest (0.95 in epoch 2), the epoch its best checkpoint comes from, though
    # another run ends higher
    assert "Best run: **optimizer=adam**, val/acc = 0.9500" in text
    assert [row[-1] for row in table_rows(text)] == ["", "yes", ""]
    assert_csv_matches(sweep)
    [fig] = figures
    left, right = fig.axes
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert legend == ["optimizer=sgd", "optimizer=adam (best)", "optimizer=rmsprop"]
    lines = {line.get_label(): line for line in right.get_lines()}
    assert lines["optimizer=adam (best)"].get_linewidth() > lines["optimizer=sgd"].get_linewidth()
    stars = [line for line in right.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1
    assert (stars[0].get_xdata()[0], stars[0].get_ydata()[0]) == (2, pytest.approx(0.95))
    assert right.get_ylabel() == "val/acc"


@pytest.mark.slow  # about 1 s or more: the fast tier stays under 2 minutes
def test_detection_and_segmentation_runs_rank_by_their_metric(tmp_path, monkeypatch):
    det = tmp_path / "det"
    fake_run(
        det / "0",
        ["model=a"],
        {"test/map": 0.3, "val/map": 0.2},
        val_acc=[0.1, 0.2],
        task="detection",
    )
    fake_run(
        det / "1",
        ["model=b"],
        {"test/map": 0.4, "val/map": 0.4},
        val_acc=[0.3, 0.4],
        task="detection",
    )
    seg = fake_run(
        tmp_path / "seg", ["model=fcn"], {"val/miou": 0.6}, val_acc=[0.5, 0.6], task="segmentation"
    )
    figures = captured_figure(monkeypatch)

    text, _ = compare([det])
    assert "Best run: **model=b**, val/map = 0.4000" in text
    assert figures[-1].axes[1].get_ylabel() == "val/map"

    text, written = compare([det, seg])  # tasks mixed: ranked by the most common task's metric
    assert written[0] == det / "comparison.md"
    assert "Best run: **model=b**, val/map" in text
    right = figures[-1].axes[1]
    assert right.get_ylabel() == "validation metric"
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert legend == ["model=a [val/map]", "model=b [val/map] (best)", "model=fcn [val/miou]"]
    curves = [line for line in right.get_lines() if line.get_label() in legend]
    assert [len(line.get_xdata()) for line in curves] == [2, 2, 2]  # two epochs each
    assert_png(det / "comparison.png")


def test_a_sweep_and_loose_classification_runs_together(tmp_path):
    """Runs from different commands: a sweep over optimizers and two runs of other models."""
    sweep = tmp_path / "multirun"
    fake_run(
        sweep / "0", ["optimizer=sgd", "trainer.max_epochs=3"], finished(0.90), val_acc=[0.7, 0.9]
    )
    fake_run(
        sweep / "1", ["optimizer=adam", "trainer.max_epochs=3"], finished(0.95), val_acc=[0.8, 0.96]
    )
    resnet = fake_run(
        tmp_path / "resnet",
        ["model=resnet20", "trainer.max_epochs=3"],
        finished(0.97),
        val_acc=[0.9, 0.97],
    )
    vgg = fake_run(tmp_path / "vgg", ["model=vgg11"], metrics=None)

    text, written = compare([sweep, resnet, vgg])

    assert written[1] == sweep / "comparison.csv"  # the sweep, the first folder given
    rows = table_rows(text)
    assert [row[0] for row in rows] == [
        "optimizer=sgd trainer.max_epochs=3",
        "optimizer=adam trainer.max_epochs=3",
        "model=resnet20 trainer.max_epochs=3",
        "model=vgg11",
    ]
    assert [row[-1] for row in rows] == ["", "", "yes", ""]
    assert "model=vgg11: " in text and "the run did not finish" in text
    assert_csv_matches(sweep)
