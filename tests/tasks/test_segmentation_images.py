"""SegmentationModule's validation pictures: a grid of [image | true mask | predicted mask] rows
in TensorBoard, and nothing drawn (and no crash) without a TensorBoard logger."""

import io

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.tasks.segmentation import SegmentationModule, unnormalize

K, SIZE = 4, 24


def adam(params):
    return torch.optim.Adam(params, lr=1e-3)


def tiny_loader(count: int = 6, batch_size: int = 2) -> DataLoader:
    """Normalised random images with random masks (a few pixels ignored), as a datamodule gives."""
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(count, 3, SIZE, SIZE, generator=g)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    masks = torch.randint(0, K, (count, SIZE, SIZE), generator=g)
    masks[:, 0, :] = 255
    return DataLoader(TensorDataset((pixels - mean) / std, masks), batch_size=batch_size)


def fit(module, logger, tmp_path) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        limit_train_batches=1,
        log_every_n_steps=1,
        logger=logger,
        default_root_dir=tmp_path,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = tiny_loader()
    trainer.fit(module, loader, loader)
    return trainer


def test_validation_grids_reach_tensorboard(tmp_path):
    torch.manual_seed(0)
    module = SegmentationModule(nn.Conv2d(3, K, 1), adam, num_classes=K, num_logged_images=3)
    fit(module, TensorBoardLogger(tmp_path, name="tb", version=""), tmp_path)

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    events.Reload()
    pictures = events.Images("val/predictions")
    assert len(pictures) == 2  # one a validation epoch, none from the sanity check
    grid = np.asarray(Image.open(io.BytesIO(pictures[-1].encoded_image_string)).convert("RGB"))
    # 3 images over 2 batches of 2: 3 rows of 3 tiles, 2-pixel padding around each
    assert grid.shape == (3 * (SIZE + 2) + 2, 3 * (SIZE + 2) + 2, 3)
    first_image = unnormalize(next(iter(tiny_loader()))[0][:1])[0].permute(1, 2, 0).numpy()
    assert np.array_equal(grid[2 : 2 + SIZE, 2 : 2 + SIZE], first_image)
    true_tile = grid[2 : 2 + SIZE, SIZE + 4 : 2 * SIZE + 4]
    assert not np.array_equal(true_tile, first_image)  # the true mask is drawn over it


@pytest.mark.parametrize("logger", ["csv", "none", "tensorboard_off"])
def test_no_pictures_without_tensorboard_or_when_turned_off(logger, tmp_path):
    loggers = {
        "csv": CSVLogger(tmp_path, name="csv"),
        "none": False,
        "tensorboard_off": TensorBoardLogger(tmp_path, name="tb", version=""),
    }
    count = 0 if logger == "tensorboard_off" else 4
    module = SegmentationModule(nn.Conv2d(3, K, 1), adam, num_classes=K, num_logged_images=count)
    trainer = fit(module, loggers[logger], tmp_path)
    assert "val/miou" in trainer.callback_metrics and module._shown == []
    if logger == "tensorboard_off":
        events = EventAccumulator(str(tmp_path / "tb"))
        events.Reload()
        assert events.Tags()["images"] == [] and "val/miou" in events.Tags()["scalars"]
