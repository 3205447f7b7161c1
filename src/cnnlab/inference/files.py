"""What predict reads and writes: the input images named by ``input=``, unique output names,
JSON rows and the class names of a run."""

import json
import logging
from pathlib import Path

from omegaconf import ListConfig

from cnnlab.errors import UserError

log = logging.getLogger("cnnlab")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


def image_paths(spec) -> list[Path]:
    """The images named by ``input``: a file, every image file in a folder (sorted), or a list."""
    items = list(spec) if isinstance(spec, list | tuple | ListConfig) else [spec]
    paths: list[Path] = []
    for item in items:
        path = Path(str(item)).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(
                    f"The folder {path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})."
                    " Give input= a folder of images, an image file or a list [a.png,b.png]."
                )
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(
                f"No image or folder at {path}. Give input= an existing image file, a folder of "
                "images or a list [a.png,b.png] (relative paths start where the command runs)."
            )
    return paths


def read_image(path: Path, mode: str = "RGB"):
    """The image at ``path`` as a PIL image in ``mode`` ("RGB" or "L")."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise UserError(
            f"Could not read the image {path}: {e}. Give input= only image files PIL can open, "
            "or move the file out of the folder."
        ) from e


def class_names_of(datamodule) -> list[str] | None:
    """The datamodule's class names, or None where they need data that is not at hand."""
    try:
        return list(datamodule.class_names)
    except (OSError, UserError, RuntimeError) as e:
        log.warning("Class names unavailable (%s): labels are written as numbers.", e)
        return None


def unique_stems(paths: list[Path]) -> list[str]:
    """File stems, with _2, _3, ... added where two inputs share one."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        stems.append(path.stem if seen[path.stem] == 1 else f"{path.stem}_{seen[path.stem]}")
    return stems


def write_json(rows: list[dict], path: Path) -> None:
    path.write_text(json.dumps(rows, indent=1) + "\n")


def name_of(label: int, names) -> str:
    return names[label] if names and 0 <= label < len(names) else str(label)


def device_of(net):
    """Where ``net`` runs: its parameters' device, or an exported model's own ``device``."""
    device = getattr(net, "device", None)
    return device if device is not None else next(net.parameters()).device
