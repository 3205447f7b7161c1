"""The in-memory data path against the ordinary per-sample loaders: same images, same
normalisation, same augmentation distribution, DDP shards, and a short real training run."""

from collections import Counter
from types import SimpleNamespace

import pytest
import torch

from cnnlab.cli.train import train
from cnnlab.data.digits import DigitsDataModule
from cnnlab.data.in_memory import InMemoryLoader, shard
from cnnlab.data.transforms import classification_transforms


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def _sorted(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels in an order that does not depend on the loader's order."""
    rows = [(int(label), *image.tolist()) for label, image in zip(y, x.flatten(1), strict=True)]
    order = sorted(range(len(rows)), key=rows.__getitem__)
    return x[order], y[order]


def test_same_images_and_normalisation_as_the_ordinary_loader():
    memory = DigitsDataModule(in_memory=True, augment=False)
    plain = DigitsDataModule(in_memory=False, augment=False)
    memory.setup()
    plain.setup()
    assert memory.memory is not None and plain.memory is None

    x_mem, y_mem = _sorted(*_all(memory.train_dataloader()))  # shuffled: compare as sets
    x_plain, y_plain = _sorted(*_all(plain.train_dataloader()))
    assert torch.equal(y_mem, y_plain)
    assert torch.allclose(x_mem, x_plain, atol=1e-6, rtol=0)

    for split in ("val_dataloader", "test_dataloader"):  # unshuffled: the same order
        x_mem, y_mem = _all(getattr(memory, split)())
        x_plain, y_plain = _all(getattr(plain, split)())
        assert torch.equal(y_mem, y_plain)
        assert (x_mem - x_plain).abs().max() <= 1e-6
    assert len(memory.train_dataloader()) == len(plain.train_dataloader())


def test_uint8_sources_are_held_as_bytes_and_read_back_exactly():
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    plain = classification_transforms(
        train=False, image_size=8, native_size=8, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3]
    )
    loader = InMemoryLoader(
        images, torch.arange(5), batch_size=2, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3]
    )
    x, _ = _all(loader)
    assert torch.equal(x, torch.stack([plain(i) for i in images]))


def _marker_image(size: int = 16) -> torch.Tensor:
    """Zeros with two unequal pixels side by side: where they land gives the shift, their
    order the flip."""
    image = torch.zeros(1, size, size)
    image[0, size // 2, size // 2] = 1.0
    image[0, size // 2, size // 2 + 1] = 0.5
    return image


def _where(x: torch.Tensor, size: int = 16) -> tuple[int, int, bool]:
    """(dy, dx, flipped) of the marker in one augmented image (1, H, W)."""
    bright = (x[0] == x[0].max()).nonzero()[0].tolist()
    half = (x[0] - 0.5).abs().lt(1e-6).nonzero()[0].tolist()
    flipped = half[1] < bright[1]
    dy = bright[0] - size // 2
    dx = bright[1] - (size // 2 if not flipped else size - 1 - size // 2)
    return dy, dx, flipped


@pytest.mark.slow  # about 1 s or more: the fast tier stays under 2 minutes
def test_same_augmentation_distribution_as_the_ordinary_transforms():
    shift, draws, size = 2, 6000, 16
    image = _marker_image(size)
    plain = classification_transforms(
        train=True,
        image_size=size,
        native_size=size,
        mean=[0.0],
        std=[1.0],
        shift=shift,
        hflip=True,
    )
    torch.manual_seed(0)
    plain_hist = Counter(_where(plain(image)) for _ in range(draws))
    loader = InMemoryLoader(
        image.expand(draws, 1, size, size).contiguous(),
        torch.zeros(draws, dtype=torch.long),
        batch_size=1000,
        mean=[0.0],
        std=[1.0],
        shuffle=True,
        augment=True,
        shift=shift,
        hflip=True,
    )
    mem_hist = Counter(_where(x) for x in _all(loader)[0])

    cells = {(dy, dx, f) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)
             for f in (False, True)}  # fmt: skip
    assert set(plain_hist) == cells and set(mem_hist) == cells  # the same support
    expected = draws / len(cells)  # uniform over shifts, flip rate 0.5: 120 per cell
    for hist in (plain_hist, mem_hist):
        assert all(abs(hist[c] - expected) < 0.4 * expected for c in cells)
        assert sum(n for (_, _, f), n in hist.items() if f) / draws == pytest.approx(0.5, abs=0.03)
    # both histograms agree cell by cell within sampling noise (sd of a difference ~ 15.5)
    assert all(abs(plain_hist[c] - mem_hist[c]) < 0.5 * expected for c in cells)


def test_shuffle_depends_on_seed_and_epoch_only():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)

    def order(seed, epoch):
        loader = InMemoryLoader(
            images, torch.arange(10), batch_size=4, mean=[0.0], std=[1 / 255],
            shuffle=True, seed=seed, epoch=lambda: epoch,
        )  # fmt: skip
        return _all(loader)[1].tolist()

    assert order(42, 0) == order(42, 0)
    assert order(42, 0) != order(42, 1) and order(42, 0) != order(43, 0)
    assert sorted(order(42, 3)) == list(range(10))


def test_ddp_shards_cover_the_split_with_equal_lengths():
    indices = torch.arange(7)
    parts = [shard(indices, r, 3) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    assert set(torch.cat(parts).tolist()) == set(range(7))
    assert torch.equal(shard(indices, 0, 1), indices)

    memory = DigitsDataModule(in_memory=True, batch_size=64)
    memory.setup()
    seen, lengths = [], []
    for rank in range(2):  # a fake trainer: what the datamodule reads from Lightning's
        memory.trainer = SimpleNamespace(
            global_rank=rank,
            world_size=2,
            current_epoch=5,
            strategy=SimpleNamespace(root_device=torch.device("cpu")),
        )
        loader = memory.train_dataloader()
        lengths.append(len(loader))
        seen.append(_all(loader)[1])
    assert lengths[0] == lengths[1] == -(-629 // 64)  # ceil(1,257 / 2) = 629 per rank
    assert len(seen[0]) == len(seen[1]) == 629
    assert torch.equal(torch.cat(seen).bincount(), torch.cat([seen[0], seen[1]]).bincount())


def test_in_memory_off_on_cpu_by_default_and_limit_falls_back():
    auto = DigitsDataModule()
    auto.setup()
    assert auto.memory is None  # no trainer, CPU: the ordinary loaders
    tiny = DigitsDataModule(in_memory=True, in_memory_limit_mb=1)
    tiny.setup()
    assert tiny.memory is None  # 1,797 float images take ~7 MB


@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_training_with_in_memory_data(make_cfg):
    cfg = make_cfg(["data.in_memory=true", "trainer.max_epochs=2", "optimizer.lr=0.003"])
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.8
