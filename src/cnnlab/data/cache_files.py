"""Writing a cache file so that a reader (another DDP rank, a later run) sees all of it or none:
under a temporary name in the same folder, then renamed over the final name."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from cnnlab.errors import UserError


def write_whole(path: Path, write: Callable[[BinaryIO], None], unwritable: str) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it to ``path``. An
    OSError becomes a UserError: "Cannot write <unwritable> into the cache folder ... (why)." and
    the temporary file is removed. ``unwritable`` ends with what to do about it."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.stem[:8]}-", suffix=".tmp", delete=False
        ) as f:
            temporary = f.name
            write(f)
        os.replace(temporary, path)
    except OSError as err:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        what, _, fix = unwritable.partition(". ")
        raise UserError(
            f"Cannot write {what} into the cache folder {path.parent} ({err.strerror or err}). "
            f"{fix}"
        ) from err
