"""``data.faces=true``: each photo of an image folder stands in for its largest face, found,
aligned by the eyes and cropped (``cnnlab.data.faces``) once and kept as a PNG in a cache folder.

A crop's file name is a hash of the photo's absolute path, modification time and size and of the
face settings, so an edited or replaced photo, or new settings, make a new crop, and an unchanged
photo's crop is reused without opening the photo. A photo without a face leaves an empty
``.noface`` file, so it is not searched again either. Files are written under a temporary name
and renamed (as the proposals cache does), so DDP ranks that set up the same folder at once never
read half a file. Crops of old settings stay in the folder until it is deleted.
"""

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from cnnlab.data.cache_files import write_whole
from cnnlab.data.faces import Face, FaceSettings, aligned_crop, find_faces

CACHE_FORMAT = "v1"  # part of every key: a new file layout or crop method starts new files


@dataclass
class CropCounts:
    """What ``face_crops`` did: crops reused from the cache, photos searched for a face, and the
    photos left out (no face found; unreadable, when the reader skips those)."""

    reused: int = 0
    searched: int = 0
    no_face: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def cache_key(path: str, settings: FaceSettings) -> str:
    """The name of a photo's crop: a hash of where the photo is, its version (modification time
    and size) and every face setting."""
    stat = os.stat(path)
    text = f"{CACHE_FORMAT}|{os.path.abspath(path)}|{stat.st_mtime_ns}|{stat.st_size}|{settings!r}"
    return hashlib.sha1(text.encode()).hexdigest()


def _area(face: Face) -> int:
    x1, y1, x2, y2 = face.box
    return (x2 - x1) * (y2 - y1)


def largest_face_crop(photo: Image.Image, settings: FaceSettings) -> Image.Image | None:
    """The aligned crop of the photo's largest face (by box area), or None without a face."""
    faces = find_faces(photo, settings)
    if not faces:
        return None
    return aligned_crop(photo, max(faces, key=_area), settings.margin)


def face_crops(
    samples: list[tuple[str, int]],
    settings: FaceSettings,
    cache_dir: str,
    read: Callable[[str], Image.Image | None],
    counts: CropCounts,
) -> list[tuple[str, int]]:
    """(photo, class index) pairs -> (crop file, class index) pairs for the photos with a face,
    in the same order; ``read(path)`` opens a photo as RGB, or gives None for an unreadable one
    that is to be left out. ``counts`` adds up what was done."""
    kept = []
    for path, target in samples:
        key = cache_key(path, settings)
        crop_file = Path(cache_dir) / key[:2] / f"{key}.png"
        no_face_file = crop_file.with_suffix(".noface")
        if crop_file.is_file() or no_face_file.is_file():
            counts.reused += 1
        else:
            photo = read(path)
            if photo is None:
                counts.unreadable.append(path)
                continue
            counts.searched += 1
            crop = largest_face_crop(photo, settings)
            _write(no_face_file if crop is None else crop_file, crop)
        if crop_file.is_file():
            kept.append((str(crop_file), target))
        else:
            counts.no_face.append(path)
    return kept


def _write(path: Path, crop: Image.Image | None) -> None:
    """The crop as PNG (None: an empty file), written whole (``cache_files.write_whole``)."""
    write_whole(
        path,
        lambda f: crop.save(f, format="PNG") if crop is not None else None,
        "face crops. Make it writable, or set data.faces_cache_dir to a writable folder.",
    )
