"""report.html: one self-contained page about a run (inline CSS, PNGs as data: URIs, no script).

The page opens from the file system in any browser, mailed or copied alone, without a server
and without a network.
"""

import datetime
from html import escape
from pathlib import Path

from cnnlab.report.analysis import Analysis
from cnnlab.report.markup import img, number, table
from cnnlab.report.run_data import RunData
from cnnlab.tasks.table import TASKS

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222;
       padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.meta { color: #555; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; }
.card { background: #f3f6fa; border: 1px solid #d8e0ea; border-radius: 6px; padding: 0.6em 1em; }
.card b { display: block; font-size: 1.4em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2em 0.7em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #eef1f5; } pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
img { max-width: 100%; } .pixels { image-rendering: pixelated; }
.row { display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap; }
.mistakes { display: grid; grid-template-columns: repeat(6, 150px); gap: 0.8em; }
.mistakes.cams { grid-template-columns: repeat(3, 330px); }
.gallery { display: grid; grid-template-columns: repeat(4, 1fr); gap: 0.8em; }
figure { margin: 0; text-align: center; font-size: 0.85em; }
.mistakes img { width: 96px; height: 96px; border: 1px solid #999; margin: 0 2px; }
.gallery img { width: 100%; border: 1px solid #999; image-rendering: pixelated; }
.note { background: #fff6dd; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
"""


def metric_order(name: str) -> tuple[int, str]:
    """test/ first, then val/, train/, the rest."""
    for rank, prefix in enumerate(("test/", "val/", "train/")):
        if name.startswith(prefix):
            return rank, name
    return 3, name


def header(run: RunData, found: Analysis) -> str:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(run.config_text)
    model = str(OmegaConf.select(cfg, "model._target_", default="?")).rsplit(".", 1)[-1]
    data = str(OmegaConf.select(cfg, "data._target_", default="?")).rsplit(".", 1)[-1]
    made = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    cards = []
    headline = TASKS[run.task].headline if run.task in TASKS else None
    if headline in run.metrics:
        cards.append((headline, number(run.metrics[headline])))
    if found.total_params is not None:
        cards.append(("parameters", f"{found.total_params:,}"))
    if "epoch" in run.metrics:
        cards.append(("epochs", number(run.metrics["epoch"])))
    if run.epoch_times:
        mean = sum(s for _, s in run.epoch_times) / len(run.epoch_times)
        cards.append(("seconds per epoch", f"{mean:.1f}"))
    card_html = "".join(f'<div class="card">{escape(k)}<b>{v}</b></div>' for k, v in cards)
    return (
        f"<h1>Run report: {escape(run.path.name)}</h1>"
        f'<p class="meta">{escape(str(run.path.resolve()))}<br>task {escape(run.task)} · model '
        f"{escape(model)} · data {escape(data)} · made {made} by cnnlab-report</p>"
        f'<div class="cards">{card_html}</div>'
    )


def metrics_section(run: RunData) -> str:
    if not run.metrics:
        return ""
    rows = [[escape(k), number(run.metrics[k])] for k in sorted(run.metrics, key=metric_order)]
    return "<h2>Final metrics</h2><p>From metrics.json.</p>" + table(["metric", "value"], rows)


def curves_section(run: RunData) -> str:
    from cnnlab.report.plots import curves_png

    png = curves_png(run.scalars) if run.scalars else None
    if png is None:
        return ""
    return (
        "<h2>Training curves</h2><p>From the TensorBoard event files; validation points after "
        f"each epoch, at the step it ended.</p>{img(png, 'training curves')}"
    )


def times_section(run: RunData, found: Analysis) -> str:
    parts = ["<h2>Model size and time</h2>"]
    if found.total_params is not None:
        parts.append(
            f"<p>Parameters: {found.total_params:,} ({found.trainable_params:,} trainable).</p>"
        )
    if run.epoch_times:
        rows = [[str(e), f"{s:.1f}"] for e, s in run.epoch_times]
        parts.append(f"<p>Seconds per epoch, from {escape(run.times_source)}.</p>")
        parts.append(table(["epoch", "seconds"], rows))
    else:
        parts.append("<p>No epoch times were recorded (no train.log lines, no event files).</p>")
    return "".join(parts)


def samples_section(run: RunData, found: Analysis) -> str:
    if found.samples_png is None:
        return ""
    what = TASKS[run.task].drawn if run.task in TASKS else "predictions drawn"
    return f"<h2>Test predictions</h2><p>The first test images: {what}.</p>" + img(
        found.samples_png, "test predictions"
    )


def config_section(run: RunData) -> str:
    return (
        "<h2>Config</h2><details><summary>.hydra/config.yaml (the composed config that ran)"
        f"</summary><pre>{escape(run.config_text)}</pre></details>"
    )


def render(run: RunData, found: Analysis) -> str:
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in run.notes + found.notes)
    body = [
        header(run, found),
        notes,
        metrics_section(run),
        curves_section(run),
        *found.sections,
        samples_section(run, found),
        times_section(run, found),
        config_section(run),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>cnnlab report: {escape(run.path.name)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_report(
    run_dir: Path,
    out: Path | None = None,
    max_images: int | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Path:
    """Read ``run_dir``, analyse its best checkpoint on the test split (its first
    ``max_images`` images; ``overrides`` like ``report.iou_threshold=0.7``), write the page; a
    run logged to MLflow (RUN_DIR/mlflow.json) gets the page as an artifact too."""
    from omegaconf import OmegaConf

    from cnnlab.loggers.mlflow_record import add_to_recorded_run
    from cnnlab.report.analysis import analyse
    from cnnlab.report.run_data import collect
    from cnnlab.report.settings import report_settings

    run = collect(run_dir)
    settings = report_settings(OmegaConf.create(run.config_text), overrides, max_images)
    found = analyse(run.checkpoint, settings)
    out = out or run_dir / "report.html"
    out.write_text(render(run, found), encoding="utf-8")
    add_to_recorded_run(run_dir, out)
    return out
