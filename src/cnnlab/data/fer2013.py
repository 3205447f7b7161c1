"""FER-2013: 35,887 grey 48x48 faces, each labelled with one of seven facial expressions.

Read from the Kaggle CSV (``emotion,pixels,Usage``; ``pixels`` holds 2,304 space-separated
values 0..255, row by row) into one uint8 tensor kept in memory. ``Usage`` picks the split:
Training -> train, PublicTest -> val, PrivateTest -> test. A file without ``Usage`` (Kaggle's
later ``train.csv``) is split 80/10/10, stratified by emotion, with ``split_seed``.
Kaggle needs a login, so the file is never downloaded: the error when it is missing says where
to get it.
"""

import csv
import logging
import os
import warnings

import numpy as np
import torch

from cnnlab.data.classification import ClassificationDataModule
from cnnlab.data.digits import TensorImageDataset
from cnnlab.data.subset import stratified_split
from cnnlab.errors import UserError

log = logging.getLogger(__name__)

EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
SIZE = 48
SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
KAGGLE_PAGE = (
    "https://www.kaggle.com/c/"
    "challenges-in-representation-learning-facial-expression-recognition-challenge/data"
)


def _bad_file(path: str, line: int, problem: str) -> UserError:
    return UserError(
        f"{path}, line {line}: {problem}. Every row of a FER-2013 CSV needs an emotion 0..6, "
        f"{SIZE * SIZE} space-separated pixel values 0..255 and, if the file has the column, a "
        f"Usage of {', '.join(SPLITS)}. Fix or remove the row, or download the file again."
    )


def _pixels(text: str, path: str, line: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # older numpy warns on unparsable text instead of raising
        try:
            values = np.fromstring(text, dtype=np.int32, sep=" ")
        except (ValueError, DeprecationWarning):
            raise _bad_file(path, line, "the pixels are not whole numbers") from None
    if values.size != SIZE * SIZE:
        raise _bad_file(path, line, f"{values.size} pixel values instead of {SIZE * SIZE}")
    if values.min() < 0 or values.max() > 255:
        raise _bad_file(path, line, "a pixel value is outside 0..255")
    return values.astype(np.uint8)


def read_fer2013(path: str) -> tuple[torch.Tensor, torch.Tensor, list[str] | None]:
    """Images (N, 1, 48, 48) uint8, labels (N,) int64 and each row's split (None without Usage)."""
    images, labels, usage = [], [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in ("emotion", "pixels") if name not in header]
        if missing:
            raise UserError(
                f"{path} has no column {' or '.join(missing)} (its header is {header}). A "
                "FER-2013 CSV starts with the line emotion,pixels,Usage (Usage is optional); "
                "the test.csv of Kaggle's later release has no labels and cannot be used."
            )
        col_e, col_p = header.index("emotion"), header.index("pixels")
        col_u = header.index("Usage") if "Usage" in header else None
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise _bad_file(path, line, f"{len(row)} fields instead of {len(header)}")
            emotion = row[col_e].strip()
            if emotion not in {str(i) for i in range(len(EMOTIONS))}:
                raise _bad_file(path, line, f"the emotion {emotion!r} is not one of 0..6")
            images.append(_pixels(row[col_p], path, line))
            labels.append(int(emotion))
            if col_u is not None:
                split = row[col_u].strip()
                if split not in SPLITS:
                    raise _bad_file(path, line, f"the Usage {split!r} is unknown")
                usage.append(SPLITS[split])
    if not images:
        raise UserError(f"{path} has no rows of faces below its header; download it again.")
    x = torch.from_numpy(np.stack(images)).view(-1, 1, SIZE, SIZE)
    return x, torch.tensor(labels, dtype=torch.int64), usage if col_u is not None else None


class FER2013DataModule(ClassificationDataModule):
    """Facial expressions (Goodfellow et al. 2013, the ICML 2013 representation-learning
    challenge): 28,709 train, 3,589 public-test (val) and 3,589 private-test (test) faces."""

    native_channels = 1
    native_size = SIZE
    # The statistics commonly quoted for FER-2013's Training rows (pixels / 255); taken as
    # published, not recomputed from the file at run time.
    mean = (0.5077,)
    std = (0.2550,)
    hflip_makes_sense = True  # a mirrored smile is still a smile

    def __init__(
        self,
        root: str = "data/fer2013",
        file: str = "fer2013.csv",
        image_size: int = SIZE,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(root=root, image_size=image_size, **kwargs)
        self.file = file
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    @property
    def all_class_names(self) -> list[str]:
        return list(EMOTIONS)

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.file)

    def _check_file(self) -> None:
        if not os.path.isfile(self.path):
            raise UserError(
                f"FER-2013 is not available: {self.path} does not exist. Download fer2013.csv "
                f"(inside fer2013.tar.gz) from the Kaggle page of the 'Challenges in "
                f"Representation Learning: Facial Expression Recognition Challenge', "
                f"{KAGGLE_PAGE}, and put it there; it cannot be downloaded automatically because "
                "Kaggle needs a login. Point data.root at another folder if the file lives "
                "elsewhere, or set data.file=train.csv for the release without a Usage column."
            )

    def prepare_data(self) -> None:
        self._check_file()

    def _build(self, train_tf, eval_tf):
        self._check_file()
        x, y, usage = read_fer2013(self.path)
        if usage is None:
            log.info(
                "%s has no Usage column: splitting its %d faces %g/%g/%g into train/val/test, "
                "stratified by emotion, with data.split_seed=%d",
                self.path,
                len(y),
                1 - self.val_fraction - self.test_fraction,
                self.val_fraction,
                self.test_fraction,
                self.split_seed,
            )
            fractions = (self.val_fraction, self.test_fraction)
            parts = stratified_split(y.tolist(), fractions, self.split_generator())
        else:
            parts = [[i for i, u in enumerate(usage) if u == s] for s in ("train", "val", "test")]
        for name, part in zip(("train", "val", "test"), parts, strict=True):
            if not part:
                raise UserError(
                    f"{self.path} gives the {name} split no faces. With a Usage column every "
                    f"one of {', '.join(SPLITS)} needs rows; without it, use more rows."
                )
        return tuple(
            TensorImageDataset(x[idx], y[idx], tf)
            for idx, tf in zip(parts, (train_tf, eval_tf, eval_tf), strict=True)
        )
