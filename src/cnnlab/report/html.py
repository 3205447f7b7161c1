"""report.html: one self-contained page about a run (inline CSS, PNGs as data: URIs, no script).

The page opens from the file system in any browser, mailed or copied alone, without a server
and without a network.
"""

import base64
import datetime
from html import escape
from pathlib import Path

from cnnlab.report.analysis import Analysis
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
figure { margin: 0; text-align: center; font-size: 0.85em; }
figure img { width: 96px; height: 96px; border: 1px solid #999; }
.note { background: #fff6dd; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(png: bytes, alt: str, css: str = "") -> str:
    extra = f' class="{css}"' if css else ""
    return f'<img src="{data_uri(png)}" alt="{escape(alt)}"{extra}>'


def number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return escape(str(value))


def table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already escaped HTML, numbers right-aligned by their class."""
    top = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{top}</tr>{body}</table>"


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


def classification_section(found: Analysis) -> str:
    if found.confusion_png is None:
        return ""
    where = f"the {found.test_images} test images, with {escape(found.checkpoint.name)}"
    parts = [
        f"<h2>Test split</h2><p>Accuracy {found.accuracy:.4f} on {where}.</p>",
        '<div class="row">',
        img(found.confusion_png, "confusion matrix"),
        table(
            ["class", "accuracy", "images"],
            [[escape(n), f"{a:.3f}", str(c)] for n, a, c in found.per_class],
        ),
        "</div>",
        img(found.per_class_png, "accuracy per class"),
        "<h2>Most confident mistakes</h2>",
    ]
    if found.mistakes:
        figures = "".join(
            f"<figure>{img(png, f'true {t}, predicted {p}', 'pixels')}<figcaption>true "
            f"<b>{escape(t)}</b>, predicted <b>{escape(p)}</b><br>confidence {c:.2f}"
            "</figcaption></figure>"
            for png, t, p, c in found.mistakes
        )
        parts.append(f'<div class="mistakes">{figures}</div>')
    else:
        parts.append("<p>No mistakes on the test split.</p>")
    return "".join(parts)


def filters_section(found: Analysis) -> str:
    if found.filters_png is None:
        return ""
    shape = " x ".join(str(d) for d in found.filters_shape)
    return (
        f"<h2>First-layer filters</h2><p>The first convolution's weights ({shape}: out x in x "
        "height x width), each filter scaled to its own range.</p>"
        + img(found.filters_png, "first-layer filters", "pixels")
    )


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
        classification_section(found),
        filters_section(found),
        samples_section(run, found),
        times_section(run, found),
        config_section(run),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>cnnlab report: {escape(run.path.name)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_report(run_dir: Path, out: Path | None = None, max_images: int | None = None) -> Path:
    """Read ``run_dir``, analyse its best checkpoint on the test split, write the page."""
    from cnnlab.report.analysis import analyse
    from cnnlab.report.run_data import collect

    run = collect(run_dir)
    found = analyse(run.checkpoint, max_images)
    out = out or run_dir / "report.html"
    out.write_text(render(run, found), encoding="utf-8")
    return out
