"""Faces in a photograph: found, aligned by the eyes and cropped, as the lecture's emotion
pipeline begins ("input preprocessing: alignment, normalization").

``find_faces`` runs OpenCV's Haar cascades (Viola & Jones): the frontal-face cascade over the
grey photo, then the eye cascade inside the upper part of each face box. With two eyes found,
the face's tilt is the angle of the line through their centres. ``aligned_crop`` turns the
photo about the face box's centre by that angle, so that the eyes are level, and cuts a square
around the box with a margin; the caller resizes it to the training data's size and channels
and normalises it with the training transform.

OpenCV comes with the ``faces`` extra (``opencv-contrib-python-headless``, which also has the
cascade files in ``cv2.data.haarcascades``); without it, the error names the extra.
"""

import math
from dataclasses import dataclass, fields
from functools import cache

import numpy as np
from PIL import Image

from cnnlab.errors import UserError

EYE_CASCADE = "haarcascade_eye.xml"


@dataclass(frozen=True)
class FaceSettings:
    """The detector's and the crop's settings; ``predict.face_*`` and ``data.face_*`` keys."""

    cascade: str = "haarcascade_frontalface_default.xml"  # a file in cv2.data.haarcascades
    scale_factor: float = 1.1  # the image pyramid's step: smaller finds more, slower
    min_neighbors: int = 5  # overlapping hits a face needs: higher, fewer false faces
    min_size: int = 30  # smallest face side, in photo pixels
    margin: float = 0.2  # the crop reaches this share of the box's side beyond each edge
    align: bool = True  # level the eyes (when both are found); false: the box as found

    @classmethod
    def from_keys(cls, keys, prefix: str = "face_") -> "FaceSettings":
        """The settings from a mapping with ``face_``-prefixed keys; absent keys keep defaults."""
        known = {f.name for f in fields(cls)}
        given = {k.removeprefix(prefix): v for k, v in dict(keys).items() if k.startswith(prefix)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise UserError(
                f"{', '.join(prefix + k for k in unknown)}: not a face setting; the settings are "
                f"{', '.join(prefix + k for k in sorted(known))}."
            )
        return cls(**given)


@dataclass(frozen=True)
class Face:
    """One face of a photo, in the photo's pixels."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2
    eyes: tuple[tuple[float, float], tuple[float, float]] | None  # (left, right) centres
    angle: float  # degrees the crop is turned (counter-clockwise) to level the eyes


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserError(
            "Finding faces needs OpenCV and its Haar cascades: pip install 'cnnlab[faces]' "
            "(opencv-contrib-python-headless)."
        ) from None
    if not hasattr(cv2, "CascadeClassifier"):
        raise UserError(
            "This OpenCV build has no CascadeClassifier (OpenCV 5 moved it to the contrib "
            "build): pip uninstall opencv-python opencv-python-headless, then pip install "
            "'cnnlab[faces]' (opencv-contrib-python-headless)."
        )
    return cv2


@cache
def _cascade(name: str):
    cv2 = _cv2()
    path = cv2.data.haarcascades + name
    classifier = cv2.CascadeClassifier(path)
    if classifier.empty():
        raise UserError(
            f"face_cascade={name}: no Haar cascade of that name in {cv2.data.haarcascades} "
            "(haarcascade_frontalface_default.xml, haarcascade_frontalface_alt2.xml, ...)."
        )
    return classifier


def find_faces(image: Image.Image, settings: FaceSettings = FaceSettings()) -> list[Face]:
    """The faces of ``image``, left to right, each with its eyes and tilt where both were found."""
    cv2 = _cv2()
    grey = np.asarray(image.convert("L"))
    hits = _cascade(settings.cascade).detectMultiScale(
        grey,
        scaleFactor=settings.scale_factor,
        minNeighbors=settings.min_neighbors,
        minSize=(settings.min_size, settings.min_size),
    )
    faces = []
    for x, y, w, h in sorted((tuple(int(v) for v in hit) for hit in hits), key=lambda b: b[0]):
        eyes = _eyes(cv2, grey, x, y, w, h)
        angle = 0.0
        if eyes is not None and settings.align:
            (lx, ly), (rx, ry) = eyes
            angle = math.degrees(math.atan2(ry - ly, rx - lx))
        faces.append(Face((x, y, x + w, y + h), eyes, round(angle, 2)))
    return faces


def _eyes(cv2, grey: np.ndarray, x: int, y: int, w: int, h: int):
    """The centres of the two largest eyes in the face's upper 60%, one on each side of its
    middle, as (left, right) in photo pixels; None unless both are found."""
    upper = grey[y : y + int(0.6 * h), x : x + w]
    hits = _cascade(EYE_CASCADE).detectMultiScale(
        upper, scaleFactor=1.1, minNeighbors=5, minSize=(max(1, w // 8), max(1, w // 8))
    )
    centres = [(x + ex + ew / 2, y + ey + eh / 2, ew * eh) for ex, ey, ew, eh in hits]
    left = [c for c in centres if c[0] < x + w / 2]
    right = [c for c in centres if c[0] >= x + w / 2]
    if not left or not right:
        return None
    (lx, ly, _), (rx, ry, _) = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
    return (float(lx), float(ly)), (float(rx), float(ry))


def aligned_crop(image: Image.Image, face: Face, margin: float = 0.2) -> Image.Image:
    """The face as a square RGB picture: ``image`` turned by ``face.angle`` about the box's
    centre (the eyes level), cut to the box widened by ``margin`` of its side on every edge
    (black beyond the photo's border)."""
    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    turned = image.convert("RGB")
    if face.angle:
        turned = turned.rotate(face.angle, resample=Image.Resampling.BILINEAR, center=(cx, cy))
    half = max(x2 - x1, y2 - y1) * (0.5 + margin)
    box = tuple(round(v) for v in (cx - half, cy - half, cx + half, cy + half))
    return turned.crop(box)
