"""torchvision's published weights for the builders that wrap torchvision's own models.

The detection and segmentation builders call torchvision's builders with weights chosen by
name ("DEFAULT", "COCO_V1", "IMAGENET1K_V2", ...). Asked-for files are read from the torch hub
cache, or downloaded into it, always with ``torch.load(weights_only=True)``; a download that
fails (an offline machine) becomes a UserError that names the file, its URL and the cache.
"""

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import urlparse

import torch
import torchvision
from torchvision.models import _api as tv_api

from cnnlab.errors import UserError
from cnnlab.models.weight_files import hub_checkpoint_dir


def weights_member(arch: str, weights: str | None) -> tv_api.WeightsEnum | None:
    """torchvision's weights enum member named ``weights`` for ``arch``; None for None."""
    if weights is None:
        return None
    enum = torchvision.models.get_model_weights(arch)
    name = str(weights).removeprefix(f"{enum.__name__}.").upper()
    if name == "DEFAULT":
        return enum.DEFAULT
    if name not in enum.__members__:
        names = ", ".join(["DEFAULT", *enum.__members__])
        raise UserError(
            f"torchvision has no weights named {weights!r} for {arch}. Available names: {names}."
        )
    return enum[name]


@contextlib.contextmanager
def offline_as_user_error(name: str, member: tv_api.WeightsEnum | None) -> Iterator[None]:
    """Run torchvision's builder with every weights file read through the torch hub cache with
    ``weights_only=True`` (torchvision's own call leaves it False); a failed download becomes a
    UserError that names the file and the cache folder."""
    if member is None:
        yield
        return
    try:
        with _patched(tv_api, "load_state_dict_from_url", _safe_hub_load):
            yield
    except OSError as e:  # URLError, HTTPError, socket and SSL errors are all OSErrors
        filename = os.path.basename(urlparse(member.url).path)
        raise UserError(
            f"Could not download torchvision's {member} weights for {name} ({filename}) from "
            f"{member.url}: {e}. This machine may be offline. Download {filename} on a machine "
            f"with network access and put it into {hub_checkpoint_dir()} (the torch hub cache; "
            f"set TORCH_HOME to move it), then run again; it is read from there without the "
            f"network. Or leave model.weights and model.weights_backbone null."
        ) from e


def _safe_hub_load(url: str, *args, **kwargs) -> dict[str, torch.Tensor]:
    """torch.hub's cached download and load, refusing pickles that would build objects."""
    kwargs.update(map_location="cpu", weights_only=True)
    return torch.hub.load_state_dict_from_url(url, *args, **kwargs)


@contextlib.contextmanager
def _patched(owner: object, attribute: str, value: object) -> Iterator[None]:
    original = getattr(owner, attribute)  # AttributeError if torchvision renames it
    setattr(owner, attribute, value)
    try:
        yield
    finally:
        setattr(owner, attribute, original)
