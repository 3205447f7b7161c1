"""What `tensorboard --logdir outputs/` shows: short real runs on the digits, their event files
read back with TensorBoard's own EventAccumulator."""

import io

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2

from cnnlab.cli.train import train
from cnnlab.viz.classification import captioned_grid, confusion_matrix_image

from composing import compose_run

SHORT = [
    "trainer.max_epochs=2",
    "trainer.enable_model_summary=false",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
]
IMAGES = ("train/inputs", "val/predictions", "val/confusion_matrix", "model/first_conv_filters")


def read_events(run_dir) -> ea.EventAccumulator:
    keep_all = {ea.IMAGES: 0, ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0}
    return ea.EventAccumulator(str(run_dir / "tensorboard"), size_guidance=keep_all).Reload()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Two epochs with every picture, Grad-CAM, histograms and the graph switched on."""
    tmp = tmp_path_factory.mktemp("tb")
    overrides = [
        *SHORT,
        "callbacks.tensorboard_images.histograms=true",
        "callbacks.tensorboard_images.cam=true",
        "callbacks.tensorboard_images.max_time_share=null",  # every epoch, however fast
        "logger.tensorboard.log_graph=true",
    ]
    cfg = compose_run(overrides, "train", tmp / "run", tmp / "data")
    metrics = train(cfg)
    GlobalHydra.instance().clear()
    return read_events(tmp / "run"), metrics


@pytest.mark.slow  # a shared training run: the fast tier stays under 2 minutes
def test_scalars_have_the_contract_names(full_run):
    events, _ = full_run
    scalars = events.Tags()["scalars"]
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc", "lr", "test/acc", "test/loss"):
        assert tag in scalars, tag
    assert "hp_metric" not in scalars  # no -1 placeholder


@pytest.mark.slow  # a shared training run: the fast tier stays under 2 minutes
def test_images_each_epoch(full_run):
    events, _ = full_run
    tags = events.Tags()["images"]
    for tag in IMAGES:
        assert tag in tags, tag
    assert len(events.Images("val/predictions")) == 2  # one per epoch
    assert len(events.Images("model/first_conv_filters")) == 3  # as initialised, then per epoch
    first = events.Images("train/inputs")[0]
    assert first.width >= 4 * 64 and first.height >= 4 * 64  # 16 digits, drawn 64x64


@pytest.mark.slow  # a shared training run: the fast tier stays under 2 minutes
def test_grad_cam_each_epoch_over_the_first_validation_images(full_run):
    """val/cam: 8 digits in a 3x3 grid, each drawn 128 pixels high with its map in colour over
    it; the last epoch's is drawn after training, when validation's inference_mode is over."""
    from PIL import Image

    events, _ = full_run
    pictures = events.Images("val/cam")
    assert [e.step for e in pictures] == [e.step for e in events.Images("val/predictions")]
    assert len(pictures) == 2  # one per epoch
    for picture in pictures:
        pixels = np.asarray(Image.open(io.BytesIO(picture.encoded_image_string)).convert("RGB"))
        assert pixels.shape[0] >= 3 * 128 and pixels.shape[1] >= 3 * 128
        assert pixels.std() > 20  # not blank
        red, blue = pixels[..., 0].astype(int), pixels[..., 2].astype(int)
        assert (abs(red - blue) > 60).mean() > 0.05  # the heatmap's colours, over grey digits


@pytest.mark.slow  # a shared training run: the fast tier stays under 2 minutes
def test_histograms_and_graph_when_switched_on(full_run):
    events, _ = full_run
    histograms = events.Tags()["histograms"]
    assert "weights/net.features.0.weight" in histograms  # LeNet's C1
    assert "grads/net.features.0.weight" in histograms
    assert events.Tags()["graph"]


@pytest.mark.slow  # a shared training run: the fast tier stays under 2 minutes
def test_hparams_hold_the_settings_and_the_final_metrics(full_run):
    events, metrics = full_run
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    assert start.hparams["lr"].number_value == pytest.approx(0.002)
    assert start.hparams["optimizer"].string_value == "Adam"
    assert start.hparams["model"].string_value == "lenet"
    assert start.hparams["max_epochs"].number_value == 2
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]
    ).experiment
    names = {m.name.tag for m in experiment.metric_infos}
    assert {"val/acc", "val/loss", "test/acc", "test/loss"} <= names
    # the table shows a metric's last point: the final value, not a placeholder
    assert events.Scalars("val/acc")[-1].value == pytest.approx(metrics["val/acc"])
    assert events.Scalars("test/acc")[-1].value == pytest.approx(metrics["test/acc"])


@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_time_share_skips_the_middle_epochs(make_cfg, tmp_path):
    """A share no drawing can keep: the first epoch (cost unknown) and the last are drawn."""
    share = "callbacks.tensorboard_images.max_time_share=0.001"  # 1 ms a second
    histograms = "callbacks.tensorboard_images.histograms=true"  # kept to the same epochs
    train(make_cfg([*SHORT, "trainer.max_epochs=4", share, histograms]))
    events = read_events(tmp_path / "run")
    assert [e.step for e in events.Images("val/predictions")] == [3, 12]  # epochs 0 and 3
    assert len(events.Images("train/inputs")) == 2
    assert len(events.Images("model/first_conv_filters")) == 3  # as initialised, 0, 3
    assert [e.step for e in events.Histograms("grads/net.features.0.weight")] == [0, 9]
    # the last epoch's pictures are drawn after training, not inside the epoch
    assert (
        events.Images("val/predictions")[-1].wall_time >= events.Scalars("train/acc")[-1].wall_time
    )


def test_one_override_switches_the_images_off(make_cfg, tmp_path):
    cfg = make_cfg([*SHORT, "trainer.max_epochs=1", "callbacks.tensorboard_images=null"])
    train(cfg)
    events = read_events(tmp_path / "run")
    assert events.Tags()["images"] == []
    assert "val/acc" in events.Tags()["scalars"]


def test_figures_render():
    matrix = torch.tensor([[5, 1], [0, 4]])
    image = confusion_matrix_image(matrix, ["cat", "dog"])
    assert image.dtype == torch.uint8 and image.shape[0] == 3 and image.float().std() > 10
    tiles = torch.zeros(3, 3, 32, 32, dtype=torch.uint8)
    grid = captioned_grid(tiles, ["1", "2", "3"], ["1", "7", "3"])
    assert grid.shape[0] == 3 and grid.shape[2] >= 96 * 2
