"""cnnlab-report: the page of a real short run, self-contained, rendered in headless Chromium.

One digits run (LeNet, 2 short epochs, trained in-process) is shared by the tests of this file.
The browser test is skipped, with its reason, only where no Chromium is installed (.ci/run
installs Debian's ``chromium``).
"""

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from PIL import Image

from cnnlab.cli.report import main
from cnnlab.cli.train import train
from cnnlab.report.epoch_times import from_train_log
from cnnlab.report.html import write_report

from composing import compose_run

SECTIONS = (
    "Final metrics",
    "Training curves",
    "Test split",
    "Most confident mistakes",
    "First-layer filters",
    "Model size and time",
    "Config",
)
IMG_SRC = re.compile(r'<img src="([^"]*)"')


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    """A finished digits run folder laid out as cnnlab-train leaves it, and its metrics."""
    root = tmp_path_factory.mktemp("report")
    run_dir = root / "run"
    overrides = [
        "trainer.max_epochs=2",
        "+trainer.limit_train_batches=6",
        "trainer.enable_model_summary=false",
    ]
    cfg = compose_run(overrides, "train", run_dir, root / "data")
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    try:
        metrics = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    return run_dir, metrics


@pytest.fixture(scope="module")
def page(run) -> tuple[Path, str]:
    run_dir, _ = run
    path = write_report(run_dir)
    return path, path.read_text(encoding="utf-8")


def decoded(src: str) -> Image.Image:
    head, data = src.split(",", 1)
    assert head == "data:image/png;base64"
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


@pytest.mark.slow  # a shared training run: the fast tier stays under 2 minutes
def test_page_is_written_into_the_run_folder_with_every_section(run, page):
    run_dir, metrics = run
    path, html = page
    assert path == run_dir / "report.html"
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in html
    assert "<details><summary>.hydra/config.yaml" in html and "DigitsDataModule" in html
    # The page's own test pass over the best checkpoint agrees with the run's test/acc.
    assert f"Accuracy {metrics['test/acc']:.4f} on the 270 test images" in html
    assert f"Balanced accuracy {metrics['test/balanced_acc']:.4f}" in html
    assert f"macro F1 {metrics['test/f1_macro']:.4f}" in html
    assert "<th>recall</th><th>precision</th><th>F1</th><th>images</th>" in html
    assert "test/acc" in html and "Seconds per epoch, from event file clock times" in html
    assert "Parameters: 61,706" in html  # LeNet-5 on 10 classes
    assert html.count("<figure>") == 12  # confident mistakes, as ~25 % are wrong after 2 epochs
    assert html.count("<br>Grad-CAM for") == 12  # each with its heatmaps, for both classes


@pytest.mark.slow  # a shared training run: the fast tier stays under 2 minutes
def test_page_is_self_contained(page):
    _, html = page
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "http://" not in html.split("<pre>")[0] and "https://" not in html.split("<pre>")[0]
    assert "<script" not in html and "<link" not in html
    sources = IMG_SRC.findall(html)
    assert len(sources) >= 40  # curves, confusion, per-class bars, 12 x 3 mistakes, filters
    for src in sources:
        image = decoded(src)
        low, high = image.convert("L").getextrema()
        assert image.width >= 20 and high - low > 50, "a blank picture"


def test_errors_name_the_path_without_traceback(tmp_path, capsys):
    for folder, missing in ((tmp_path / "nope", "No such folder"), (tmp_path, "config.yaml")):
        with pytest.raises(SystemExit) as exit_info:
            main([str(folder)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert str(folder) in err and missing in err and "Traceback" not in err


def test_epoch_times_read_from_train_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "[2026-01-01 10:00:00,000][cnnlab][INFO] - Run folder: x\n"
        "[2026-01-01 10:00:07,000][cnnlab][INFO] - epoch 1/2  step 20  lr=0.0015  "
        "train/loss=1.3299  val/acc=0.6704  (7.0s)\n"
        "[2026-01-01 10:00:16,000][cnnlab][INFO] - epoch 2/2  step 40  lr=0.0005  (9.4s)\n"
    )
    assert from_train_log(log) == [(1, 7.0), (2, 9.4)]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


# Appended to a copy of the page only: marks images that did not decode (the page has no JS).
PROBE = """<script>
window.addEventListener("load", function () {
  var all = Array.from(document.images);
  var broken = all.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute("data-probe", "images=" + all.length + " broken=" + broken.length);
});
</script>"""


def chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # root in CI containers
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """Lines where the page wrote to the console or threw (Chromium logs them as CONSOLE)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.slow  # a headless browser: ~1.6 s
@pytest.mark.slow  # a shared training run: the fast tier stays under 2 minutes
def test_page_renders_in_headless_chromium(page, tmp_path):
    browser = find_chromium()
    if browser is None:
        pytest.skip("no Chromium found (apt-get install chromium; .ci/run installs it)")
    path, html = page
    shot = tmp_path / "page.png"
    result = chromium(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1200,3000",
        path.resolve().as_uri(),
    )
    assert shot.is_file(), result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1200, 3000)
        small = rgb.resize((300, 750))
        colours = small.getcolors(maxcolors=300 * 750)
        assert len(colours) > 50  # text, plots, blues of the confusion matrix, digits
        non_white = sum(n for n, c in colours if min(c) < 240)
        assert non_white > 0.05 * 300 * 750

    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = chromium(browser, tmp_path / "profile2", "--dump-dom", probed.as_uri())
    assert console_messages(result.stderr) == []
    count = len(IMG_SRC.findall(html))
    assert f'data-probe="images={count} broken=0"' in result.stdout, result.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "metric", "sections"),
    [
        (
            [
                "data=shapes_detection",
                "model=fasterrcnn",
                "model/backbone=resnet20",
                # the 64-pixel pictures as they are (not enlarged to the default 128), a narrow
                # FPN, one training step, no sanity check: a fifth of the time, the same
                # sections and pictures
                "model.min_size=64",
                "model.max_size=64",
                "model.out_channels=32",
                "data.num_train=4",
                "+trainer.num_sanity_val_steps=0",
            ],
            "test/map",
            ("Detection per class", "Detection confusion matrix", "Largest missed objects"),
        ),
        (
            [
                "data=shapes_segmentation",
                "model=fcn32s",
                "model/backbone=resnet20",
                "data.num_train=8",
            ],
            "test/miou",
            ("Per-class IoU", "Worst test images"),
        ),
    ],
    ids=["detection", "segmentation"],
)
def test_detection_and_segmentation_pages_show_metrics_and_drawn_predictions(
    tmp_path, overrides, metric, sections
):
    run_dir = tmp_path / "run"
    tiny = [
        "data.num_val=4",
        "data.num_test=4",
        "data.image_size=64",
        "data.batch_size=4",
        "trainer.max_epochs=1",
        "trainer.enable_model_summary=false",
    ]
    cfg = compose_run([*overrides, *tiny], "train", run_dir, tmp_path / "data")
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    try:
        train(cfg)
    finally:
        GlobalHydra.instance().clear()
    html = write_report(run_dir).read_text(encoding="utf-8")
    for section in ("Final metrics", "Training curves", "Test predictions", "Config", *sections):
        assert f"<h2>{section}</h2>" in html
    assert metric in html and "Test split" not in html  # the classifier's section
    for src in IMG_SRC.findall(html):
        low, high = decoded(src).convert("L").getextrema()
        assert high - low > 20, "a blank picture"
