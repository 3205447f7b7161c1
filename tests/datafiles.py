"""Small data sets in real on-disk formats, written by tests (no download, no network)."""

import json
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


# Detection -------------------------------------------------------------------------------------
DET_SIZE = (64, 48)  # width, height of every detection test image
# Category ids out of order and with gaps: labels follow the id order (cat 1, dog 2, fox 3).
COCO_CATEGORIES = ({"id": 7, "name": "fox"}, {"id": 2, "name": "cat"}, {"id": 5, "name": "dog"})


def _det_image(path, index: int) -> None:
    """A 64x48 picture with a grey gradient, saved as PNG or JPEG by the file's extension."""
    x = np.linspace(0, 255, DET_SIZE[0], dtype=np.float32)
    pixels = np.broadcast_to((x + 20 * index) % 256, (DET_SIZE[1], DET_SIZE[0]))
    rgb = np.stack([pixels, pixels[:, ::-1], np.full_like(pixels, 60)], axis=2)
    Image.fromarray(rgb.astype(np.uint8)).save(path)


def write_coco(root, folders=("train2017", "val2017"), n_images: int = 3) -> dict:
    """COCO instances files ``root/annotations/instances_<folder>.json`` and PNG/JPEG images in
    ``root/<folder>/``. Image i of folder k has id 100 * (k + 1) + i; image 0 holds a cat
    [4, 6, 20, 10] (xywh) and a fox, image 1 a dog and a crowd dog, the rest nothing.
    Returns {folder: json path}."""
    paths = {}
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    for k, folder in enumerate(folders):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        images, anns = [], []
        for i in range(n_images):
            image_id, name = 100 * (k + 1) + i, f"{i:03d}.{'png' if i % 2 == 0 else 'jpg'}"
            _det_image(os.path.join(root, folder, name), i)
            images.append({"id": image_id, "file_name": name, "width": 64, "height": 48})
            objects = {0: [(2, [4, 6, 20, 10], 0), (7, [30, 0, 34, 48], 0)]}
            objects[1] = [(5, [10, 10, 30, 30], 0), (5, [0, 0, 8, 8], 1)]
            for cat, bbox, crowd in objects.get(i, []):
                anns.append(
                    {"id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                     "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": crowd}
                )  # fmt: skip
        data = {"images": images, "annotations": anns, "categories": list(COCO_CATEGORIES)}
        paths[folder] = os.path.join(root, "annotations", f"instances_{folder}.json")
        with open(paths[folder], "w") as f:
            json.dump(data, f)
    return paths


VOC_OBJECT = """  <object><name>{name}</name><difficult>{difficult}</difficult>
    <bndbox><xmin>{0}</xmin><ymin>{1}</ymin><xmax>{2}</xmax><ymax>{3}</ymax></bndbox></object>
"""


def write_voc_xml(path, objects, size=DET_SIZE) -> None:
    """A VOC annotation; ``objects``: (name, (xmin, ymin, xmax, ymax) 1-based, difficult)."""
    body = "".join(VOC_OBJECT.format(*box, name=n, difficult=int(d)) for n, box, d in objects)
    with open(path, "w") as f:
        f.write(
            f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height>"
            f"<depth>3</depth></size>\n{body}</annotation>\n"
        )


def write_voc(root, splits=("train", "val"), n_images: int = 3) -> None:
    """A year-free VOC folder: ``JPEGImages/<split>_<i>.jpg``, ``Annotations/<same>.xml``,
    ``ImageSets/Main/<split>.txt``. Image 0 of a split holds a cat (1-based 5, 7, 24, 16) and a
    difficult dog, image 1 a person, the rest nothing."""
    for folder in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    objects = {0: [("cat", (5, 7, 24, 16), 0), ("dog", (30, 1, 64, 48), 1)]}
    objects[1] = [("person", (10, 10, 40, 40), 0)]
    for split in splits:
        ids = [f"{split}_{i}" for i in range(n_images)]
        for i, name in enumerate(ids):
            _det_image(os.path.join(root, "JPEGImages", f"{name}.jpg"), i)
            write_voc_xml(os.path.join(root, "Annotations", f"{name}.xml"), objects.get(i, []))
        with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")
