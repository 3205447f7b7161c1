"""Small data sets in real on-disk formats, written by tests (no download, no network)."""

import os
import pickle
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


def write_cifar(root, which: str = "cifar10", per_file: int = 8) -> None:
    """CIFAR-10 or CIFAR-100 in the python-pickle layout torchvision reads (random pixels).

    torchvision also checks each file's md5, which files of our own cannot pass: tests that load
    them replace ``torchvision.datasets.cifar.check_integrity`` with an existence check.
    """
    rng = np.random.default_rng(0)
    if which == "cifar10":
        folder, key, n_classes = "cifar-10-batches-py", "labels", 10
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        meta, names = "batches.meta", {"label_names": [f"c{i}" for i in range(10)]}
    else:
        folder, files, key, n_classes = "cifar-100-python", ["train", "test"], "fine_labels", 100
        meta, names = "meta", {"fine_label_names": [f"c{i}" for i in range(100)]}
    folder = os.path.join(root, folder)
    os.makedirs(folder)
    for name in files:
        batch = {
            "data": rng.integers(0, 256, (per_file, 3 * 32 * 32), dtype=np.uint8),
            key: [i % n_classes for i in range(per_file)],
        }
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f)
    with open(os.path.join(folder, meta), "wb") as f:
        pickle.dump(names, f)


def write_fer2013(path, n_per_split: int = 14, seed: int = 0, with_usage: bool = True):
    """A FER-2013 CSV of random 48x48 faces at ``path`` (a file), emotions cycling 0..6 in each
    split; without ``with_usage`` it has only emotion,pixels, like Kaggle's later train.csv."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write("emotion,pixels,Usage\n" if with_usage else "emotion,pixels\n")
        for usage in ("Training", "PublicTest", "PrivateTest"):
            for i in range(n_per_split):
                pixels = " ".join(map(str, rng.integers(0, 256, 48 * 48)))
                f.write(f"{i % 7},{pixels},{usage}\n" if with_usage else f"{i % 7},{pixels}\n")
    return path
