"""Small data sets in real on-disk formats, written by tests (no download, no network)."""

import os
import struct

import numpy as np
from PIL import Image

N_TRAIN, N_TEST = 40, 12
CLASSES = ("cat", "dog", "fox")


def write_idx(path, array: np.ndarray) -> None:
    """Write an uint8 array in the IDX format MNIST ships in (magic: 0, 0, type 8, ndim)."""
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def write_mnist(root, folder: str) -> None:
    rng = np.random.default_rng(0)
    raw = os.path.join(root, folder, "raw")
    os.makedirs(raw)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        write_idx(
            os.path.join(raw, f"{prefix}-images-idx3-ubyte"), rng.integers(0, 256, (n, 28, 28))
        )
        write_idx(os.path.join(raw, f"{prefix}-labels-idx1-ubyte"), np.arange(n) % 10)


def make_tree(root, splits=("train", "val", "test"), per_class=4) -> None:
    """root/<split>/<class>/<i>.png|jpg, with grey, RGB and RGBA images mixed."""
    for split in splits:
        for c, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                mode, ext = [("RGB", "png"), ("L", "jpg"), ("RGBA", "png")][i % 3]
                Image.new(mode, (20 + i, 16), color=40 * c + i).save(folder / f"{i}.{ext}")
