"""Selective Search region proposals (Uijlings et al. 2013), for R-CNN and Fast R-CNN.

``proposals_for(image, settings)`` gives a picture's proposals, x1, y1, x2, y2 in its pixels,
best ranked first (OpenCV's order): computed once on the original picture with OpenCV's
``cv2.ximgproc.segmentation`` (the optional extra ``cnnlab[proposals]``, i.e.
``opencv-contrib-python-headless``) and, with ``settings.cache_dir``, kept there as one small
``.npy`` file per picture, named by a hash of the picture's pixels and the settings. Any later
run, model or ``cnnlab-eval`` on the same pictures reads the file instead; files are written
under a temporary name and renamed, so parallel DataLoader workers or DDP ranks never read half
a file. The detection transform (``cnnlab.data.detection``) then moves them with the picture.

OpenCV ranks the regions with C's ``rand()``; it is seeded before each search, so a picture's
proposals do not depend on what ran before in the process.
"""

import ctypes
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

from cnnlab.data.cache_files import write_whole
from cnnlab.errors import UserError

MODES = ("fast", "quality")
CACHE_FORMAT = "v1"  # part of every cache key: a new file layout starts new keys
RAND_SEED = 1  # C's default seed: the regions of a fresh process's first search
INSTALL_HINT = 'pip install "cnnlab[proposals]" (or pip install opencv-contrib-python-headless)'

# Pictures searched (``computed``) and read from the cache (``cached``), in this process; each
# DataLoader worker counts its own.
counts = {"computed": 0, "cached": 0}


@dataclass(frozen=True)
class ProposalSettings:
    """``mode`` "fast" or "quality" (OpenCV's two strategies); ``max`` proposals kept per
    training picture, ``eval_max`` per evaluated picture; ``cache_dir`` where the proposals are
    kept (None: computed each time); ``min_size``: boxes with a side shorter than this many
    pixels are dropped."""

    mode: str = "fast"
    max: int = 2000
    eval_max: int = 300
    cache_dir: str | None = None
    min_size: int = 2

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(
                f"Selective Search mode {self.mode!r} does not exist; choose one of "
                f"{', '.join(MODES)} (proposals.mode)."
            )
        for name in ("max", "eval_max", "min_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"proposals.{name}={value!r} must be a whole number of at least 1.")

    @property
    def cap(self) -> int:
        """How many proposals are kept (and cached) per picture: enough for either use."""
        return max(self.max, self.eval_max)

    def limit(self, train: bool) -> int:
        """How many of a picture's proposals a training (or else an evaluated) picture gets."""
        return self.max if train else self.eval_max


def _cv2():
    """OpenCV with its contrib module ximgproc, or a UserError that says what to install."""
    try:
        import cv2
    except ImportError as err:
        raise UserError(
            "Selective Search proposals need OpenCV with its contrib modules, which is not "
            f"installed. Install the extra: {INSTALL_HINT}."
        ) from err
    if not hasattr(cv2, "ximgproc"):
        raise UserError(
            "Selective Search proposals need OpenCV's contrib module ximgproc, which the "
            "installed OpenCV lacks (opencv-python without contrib?). Uninstall the other "
            f"OpenCV packages (they share the cv2 package) and run: {INSTALL_HINT}."
        )
    # One thread: the search gained nothing from more (measured), the DataLoader workers are
    # the parallelism, and an OpenCV thread pool started before a fork can hang the workers.
    cv2.setNumThreads(1)
    return cv2


def _seed_c_rand() -> None:
    """Seed C's ``rand()``, which OpenCV's ranking draws from (where libc can be reached)."""
    try:
        ctypes.CDLL(None).srand(RAND_SEED)
    except (OSError, AttributeError, TypeError):  # no process-wide libc (Windows): unseeded
        pass


def _unique_rows(boxes: np.ndarray) -> np.ndarray:
    """The distinct rows of ``boxes``, each at its first place (the ranking is kept)."""
    if len(boxes) == 0:
        return boxes
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]


def selective_search(image: torch.Tensor, mode: str = "fast", min_size: int = 2) -> torch.Tensor:
    """Selective Search on one picture, uint8 (3, H, W) RGB or (1, H, W) / (H, W) grey: float
    boxes (n, 4) x1, y1, x2, y2 in its pixels, in OpenCV's ranking, without repeats and without
    boxes whose width or height is below ``min_size`` pixels."""
    if mode not in MODES:
        raise UserError(f"Selective Search mode {mode!r} does not exist; choose one of {MODES}.")
    pixels = torch.as_tensor(image).detach().cpu()
    if pixels.dim() == 2:
        pixels = pixels[None]
    if pixels.dtype != torch.uint8 or pixels.dim() != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(
            f"selective_search takes a uint8 picture (3, H, W) or (1, H, W), not "
            f"{pixels.dtype} {tuple(pixels.shape)}."
        )
    cv2 = _cv2()
    rgb = pixels.expand(3, -1, -1).permute(1, 2, 0).numpy()
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(bgr)
    if mode == "fast":
        search.switchToSelectiveSearchFast()
    else:
        search.switchToSelectiveSearchQuality()
    _seed_c_rand()
    rects = np.asarray(search.process(), dtype=np.int64).reshape(-1, 4)  # x, y, w, h
    rects = rects[(rects[:, 2] >= min_size) & (rects[:, 3] >= min_size)]
    boxes = _unique_rows(np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1))
    return torch.from_numpy(boxes).float().reshape(-1, 4)


def cache_key(image: torch.Tensor, settings: ProposalSettings) -> str:
    """The name of a picture's cache file: a hash of its pixels, its shape and every setting
    that changes what is stored (mode, min_size, how many are kept)."""
    pixels = torch.as_tensor(image).detach().cpu().contiguous()
    digest = hashlib.sha1()
    digest.update(
        f"{CACHE_FORMAT}|{pixels.dtype}|{tuple(pixels.shape)}|{settings.mode}|"
        f"{settings.min_size}|{settings.cap}|".encode()
    )
    digest.update(pixels.numpy().tobytes())
    return digest.hexdigest()


def cache_path(image: torch.Tensor, settings: ProposalSettings) -> Path | None:
    """Where this picture's proposals are kept: ``cache_dir/<key[:2]>/<key>.npy`` (or None)."""
    if settings.cache_dir is None:
        return None
    key = cache_key(image, settings)
    return Path(settings.cache_dir).expanduser() / key[:2] / f"{key}.npy"


def _read(path: Path) -> torch.Tensor | None:
    try:
        boxes = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, or broken: searched again and replaced
        return None
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        return None
    return torch.from_numpy(boxes.astype(np.float32))


def _write(path: Path, boxes: torch.Tensor) -> None:
    """The boxes as .npy, written whole (``cache_files.write_whole``): readers see all or none."""
    write_whole(
        path,
        lambda f: np.save(f, boxes.numpy().astype(np.int32)),
        "Selective Search proposals. Make the folder writable, or point the proposals' "
        "cache_dir somewhere else (null: no cache).",
    )


def proposals_for(image: torch.Tensor, settings: ProposalSettings) -> torch.Tensor:
    """A picture's proposals, float (n, 4) x1, y1, x2, y2 in its pixels, best first, at most
    ``settings.cap``: read from the cache when there, else searched (and then cached)."""
    path = cache_path(image, settings)
    if path is not None:
        boxes = _read(path)
        if boxes is not None:
            counts["cached"] += 1
            return boxes
    boxes = selective_search(image, settings.mode, settings.min_size)[: settings.cap]
    counts["computed"] += 1
    if path is not None:
        _write(path, boxes)
    return boxes


def proposal_recall(proposals: torch.Tensor, truth: torch.Tensor, iou: float) -> tuple[int, int]:
    """(found, total): how many of the true boxes (m, 4) some proposal (n, 4) overlaps with an
    IoU of at least ``iou``, and m."""
    truth = torch.as_tensor(truth, dtype=torch.float32).reshape(-1, 4)
    proposals = torch.as_tensor(proposals, dtype=torch.float32).reshape(-1, 4)
    if len(truth) == 0 or len(proposals) == 0:
        return 0, len(truth)
    best = box_iou(truth, proposals).max(dim=1).values
    return int((best >= iou).sum()), len(truth)
