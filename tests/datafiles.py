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


SVHN_RED = tuple(10 + 24 * d for d in range(10))  # red level of a digit's picture


def svhn_pixels(digit: int) -> np.ndarray:
    """The (32, 32, 3) uint8 picture ``write_svhn`` stores for ``digit``: red is ``SVHN_RED[digit]``
    everywhere, green grows down the rows (4 * row), blue along the columns (4 * column), so a
    loaded image tells its digit, its channel order and its orientation."""
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    red = np.full((32, 32), SVHN_RED[digit])
    return np.stack([red, 4 * rows, 4 * cols], axis=2).astype(np.uint8)


def write_svhn(root, n_train: int = 40, n_test: int = 20) -> None:
    """``train_32x32.mat`` and ``test_32x32.mat`` directly in ``root``, as the official files are:
    ``X`` uint8 (32, 32, 3, N), ``y`` uint8 (N, 1) with labels 1..10 where 10 is the digit 0.
    Image i of a split shows digit i % 10 (see ``svhn_pixels``).

    torchvision checks each file's md5, which files of our own cannot pass: tests that load
    them replace ``torchvision.datasets.svhn.check_integrity`` with an existence check."""
    from scipy.io import savemat

    os.makedirs(root, exist_ok=True)
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        digits = np.arange(n) % 10
        images = np.stack([svhn_pixels(d) for d in digits], axis=3)
        labels = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
        savemat(os.path.join(root, name), {"X": images, "y": labels})


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


# Segmentation ----------------------------------------------------------------------------------
SEG_SIZE = (40, 30)  # width, height of every segmentation test image


def seg_mask(index: int, class_id: int, size=SEG_SIZE) -> np.ndarray:
    """uint8 (H, W) ids: a block of ``class_id`` at the left (its width grows with ``index``, so
    the picture is not mirror-symmetric) inside a 1-pixel 255 border, 0 elsewhere."""
    width, height = size
    mask = np.zeros((height, width), dtype=np.uint8)
    right = min(8 + 2 * index, width - 2)
    mask[2 : height - 3, 1 : right + 1] = 255
    mask[3 : height - 4, 2:right] = class_id
    return mask


def write_voc_segmentation(root, splits=("train", "val"), n_images: int = 3, ids=(15, 1)):
    """A year-free VOC segmentation folder: ``JPEGImages/<split>_<i>.jpg``,
    ``SegmentationClass/<same>.png`` (palette PNGs with VOC's colours) and
    ``ImageSets/Segmentation/<split>.txt``. Image i holds a block of id ``ids[i % len(ids)]``
    drawn by ``seg_mask``. Returns {image id: mask array}."""
    from cnnlab.data.palette import voc_palette

    for folder in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    masks = {}
    for split in splits:
        names = [f"{split}_{i}" for i in range(n_images)]
        for i, name in enumerate(names):
            mask = seg_mask(i, ids[i % len(ids)])
            rgb = np.stack([mask, mask[:, ::-1], np.full_like(mask, 90)], axis=2)
            Image.fromarray(rgb).save(os.path.join(root, "JPEGImages", f"{name}.jpg"))
            png = Image.fromarray(mask, mode="P")
            png.putpalette(voc_palette())
            png.save(os.path.join(root, "SegmentationClass", f"{name}.png"))
            masks[name] = mask
        with open(os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
    return masks


SEG_LEVEL = 60  # a mask-folder image's grey level is SEG_LEVEL * its mask's id (255: white)


def write_mask_folder(root, n_images: int = 10, splits=None, num_classes: int = 3):
    """A mask folder: ``root/images/<i>.png`` and ``root/masks/<i>.png``, or with ``splits``
    (e.g. ("train", "val")) the same in ``root/<split>/``. Image i is grey, ``SEG_LEVEL * id``
    where its mask (``seg_mask`` with id 1 + i % (num_classes - 1)) holds id, white on the 255
    border: the mask is a function of the pixels. Masks alternate between modes L and P.
    Returns {image path: mask array}."""
    from cnnlab.data.palette import voc_palette

    written = {}
    for split in splits or (None,):
        folder = os.path.join(root, split) if split else str(root)
        os.makedirs(os.path.join(folder, "images"), exist_ok=True)
        os.makedirs(os.path.join(folder, "masks"), exist_ok=True)
        for i in range(n_images):
            mask = seg_mask(i, 1 + i % (num_classes - 1))
            grey = np.where(mask == 255, 255, mask.astype(np.int64) * SEG_LEVEL).astype(np.uint8)
            path = os.path.join(folder, "images", f"{i:03d}.png")
            Image.fromarray(np.stack([grey] * 3, axis=2)).save(path)
            png = Image.fromarray(mask, mode="L" if i % 2 == 0 else "P")
            if png.mode == "P":
                png.putpalette(voc_palette())
            png.save(os.path.join(folder, "masks", f"{i:03d}.png"))
            written[path] = mask
    return written


def write_yolo_folder(root, splits=("train", "val"), n_images: int = 3, names="list") -> None:
    """A YOLO text layout: ``images/<split>/<split>_<i>.png|jpg`` (64x48, ``_det_image``) and
    ``labels/<split>/<same stem>.txt``. Image 0 holds a cat ``0 0.25 0.5 0.25 0.5`` (pixels
    8, 12, 24, 36) and a fox ``2 0.75 0.5 0.125 1`` (44, 0, 52, 48), image 1 a dog
    ``1 0.5 0.5 0.5 0.5`` (16, 12, 48, 36) after a blank line, the rest empty label files.
    The class names cat, dog, fox go to ``data.yaml`` as a list (``names="list"``) or a mapping
    (``"mapping"``), or to ``classes.txt`` (``"classes.txt"``); None writes neither."""
    lines = {0: ["0 0.25 0.5 0.25 0.5", "2 0.75 0.5 0.125 1"], 1: ["", "1 0.5 0.5 0.5 0.5"]}
    for split in splits:
        for folder in ("images", "labels"):
            os.makedirs(os.path.join(root, folder, split), exist_ok=True)
        for i in range(n_images):
            name, ext = f"{split}_{i}", "jpg" if i % 2 else "png"
            _det_image(os.path.join(root, "images", split, f"{name}.{ext}"), i)
            with open(os.path.join(root, "labels", split, f"{name}.txt"), "w") as f:
                f.write("".join(line + "\n" for line in lines.get(i, [])))
    if names in ("list", "mapping"):
        listed = "[cat, dog, fox]" if names == "list" else "{0: cat, 1: dog, 2: fox}"
        with open(os.path.join(root, "data.yaml"), "w") as f:
            f.write(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {listed}\n")
    elif names == "classes.txt":
        with open(os.path.join(root, "classes.txt"), "w") as f:
            f.write("cat\ndog\n\nfox\n")


# A tiny bundled shapes set for detection runs through the commands (a few seconds an epoch).
TINY_SHAPES = [
    "data=shapes_detection",
    "data.num_train=4",
    "data.num_val=2",
    "data.num_test=2",
    "data.image_size=64",
    "data.batch_size=2",
]
