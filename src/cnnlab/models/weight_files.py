"""Where pretrained weights come from: torchvision's published files, or a local file.

Both return a plain ``{name: tensor}`` state dict on the CPU with the network's own key names
(wrappers such as a Lightning checkpoint's ``net.`` or DataParallel's ``module.`` removed).
Files are read with ``weights_only=True``: a pickle that would build arbitrary objects or run
code is refused, never executed. ``cnnlab.models.weights`` puts the tensors into a network.
"""

import os
import pickle
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from safetensors import SafetensorError
from safetensors.torch import load_file

from cnnlab.errors import UserError

# Dicts that other projects wrap a state dict in, and prefixes that wrappers add to its keys.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_KEY_PREFIXES = ("_orig_mod.", "module.")  # torch.compile, DataParallel / DDP
_NET_PREFIX = "net."  # cnnlab's LightningModules hold the network as self.net


def hub_checkpoint_dir() -> Path:
    """The folder where torch.hub keeps (and looks for) downloaded weight files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _weights_enum(arch: str, weights: str):
    """torchvision's weights enum member named ``weights`` for ``arch``."""
    from cnnlab.models import torchvision_archs  # the package: every family registered

    if arch not in torchvision_archs():
        raise UserError(
            f"torchvision publishes no pretrained weights for cnnlab's {arch!r} (its layout "
            f"differs from torchvision's, or torchvision has no such model). Weights by name "
            f"exist for: {', '.join(torchvision_archs())}. For another model, give a local file of "
            f"weights with finetune.weights=PATH (a cnnlab checkpoint, a .pt/.pth state dict or "
            f"a .safetensors file)."
        )
    enum = torchvision.models.get_model_weights(arch)
    name = weights.removeprefix(f"{enum.__name__}.").upper()
    if name == "DEFAULT":
        return enum.DEFAULT
    if name not in enum.__members__:
        names = ", ".join(["DEFAULT", *(member.name for member in enum)])
        raise UserError(
            f"torchvision has no weights named {weights!r} for {arch}. Available names: {names}."
        )
    return enum[name]


def torchvision_state_dict(arch: str, weights: str) -> dict[str, torch.Tensor]:
    """torchvision's published ``weights`` (e.g. "IMAGENET1K_V1", "DEFAULT") for ``arch``.

    A file already in the torch hub cache is read from there without the network; otherwise it
    is downloaded into that cache. Offline, the UserError names the file and where to put it.
    """
    member = _weights_enum(arch, weights)
    url = member.url
    filename = os.path.basename(urlparse(url).path)
    cached = hub_checkpoint_dir() / filename
    if cached.is_file():
        return _state_dict_from(safe_torch_load(cached), cached)
    try:
        loaded = torch.hub.load_state_dict_from_url(
            url, map_location="cpu", weights_only=True, progress=True
        )
    except OSError as e:  # URLError, HTTPError, socket and SSL errors are all OSErrors
        raise UserError(
            f"Could not download torchvision's {member.name} weights for {arch} ({filename}) "
            f"from {url}: {e}. This machine may be offline. Download {filename} on a machine "
            f"with network access and put it into {hub_checkpoint_dir()} (the torch hub cache; "
            f"set TORCH_HOME to move it), then run again; cnnlab reads it from there without "
            f"the network. Or give a local file with finetune.weights=PATH."
        ) from e
    return _state_dict_from(loaded, cached)


def file_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a local file: a cnnlab/Lightning checkpoint, a plain or wrapped state
    dict saved with torch.save (.pt, .pth, .ckpt, ...), or a .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"No weights file at {path}. Give the path of a cnnlab checkpoint "
            f"(RUN_DIR/checkpoints/last.ckpt), a .pt/.pth state dict or a .safetensors file."
        )
    loaded = _safetensors_load(path) if _is_safetensors(path) else safe_torch_load(path)
    return _state_dict_from(loaded, path)


def _is_safetensors(path: Path) -> bool:
    """By suffix, or by content: an 8-byte header length, then the JSON header's ``{``."""
    if path.suffix == ".safetensors":
        return True
    with path.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def _safetensors_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(
            f"Could not read {path} as a safetensors file ({e}): it is cut short (an interrupted "
            f"download or copy) or not a safetensors file. Copy or save it again."
        ) from e


# What to do with a file whose pickle was refused, by what the file was given as.
_TRUSTED_RESAVE = (
    "If you trust the file, re-save its weights as a plain state dict, e.g. "
    "torch.save(model.state_dict(), 'weights.pt'), or as safetensors "
    "(safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')), and give that file."
)
_NOT_FROM_CNNLAB = (
    "cnnlab-train writes checkpoints of tensors and plain containers only, so this file did not "
    "come from it. Give RUN_DIR/checkpoints/last.ckpt (or the best-*.ckpt beside it) of a "
    "cnnlab-train run; to start from someone else's weights, re-save them as a plain state dict "
    "and give that to finetune.weights=PATH."
)


def safe_torch_load(path: Path, checkpoint: bool = False) -> object:
    """``torch.load(weights_only=True)``, every failure turned into a UserError about ``path``;
    ``checkpoint``: the file was given as a cnnlab checkpoint (``ckpt_path``), not as weights."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not _refused_pickle(path, e):
            raise _unreadable(path, e) from e
        raise UserError(
            f"Refused to load {path}: it is a pickle that holds Python objects other than "
            f"tensors and plain containers, and unpickling it could run code, so it was not "
            f"executed (torch.load with weights_only=True). "
            + (_NOT_FROM_CNNLAB if checkpoint else _TRUSTED_RESAVE)
        ) from e
    except Exception as e:  # truncated zip, empty file, another format
        raise _unreadable(path, e) from e


def _refused_pickle(path: Path, error: pickle.UnpicklingError) -> bool:
    """Whether weights_only refused a real pickle (rather than failing on foreign bytes)."""
    if "Unsupported global" in str(error) or "Unsupported class" in str(error):
        return True
    with path.open("rb") as f:
        return f.read(1) == b"\x80"  # the PROTO opcode that opens a pickle of protocol >= 2


def _unreadable(path: Path, error: Exception) -> UserError:
    if isinstance(error, EOFError):
        reason = "the data ends too early"
    elif isinstance(error, (pickle.UnpicklingError, KeyError, IndexError, ValueError)):
        # torch's own text here is about trusted pickles, or a bare byte value
        reason = "neither a zip archive nor a pickle that torch.load can read"
    else:
        reason = str(error).strip().split(". ")[0].rstrip(".") or type(error).__name__
    return UserError(
        f"Could not read {path} as a PyTorch weights file ({reason}): it is cut short (an "
        f"interrupted download, copy or save) or not a checkpoint at all. Give a cnnlab "
        f"checkpoint, a state dict saved with torch.save (.pt/.pth) or a .safetensors file; if "
        f"this is a download in the torch hub cache, delete it so that it is fetched again."
    )


def _state_dict_from(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a loaded object under the network's own names."""
    for _ in range(2):  # {"state_dict": ...} or {"model": {"state_dict": ...}}
        if isinstance(loaded, dict):
            inner = next(
                (loaded[k] for k in _WRAPPER_KEYS if isinstance(loaded.get(k), dict)), None
            )
            loaded = inner if inner is not None else loaded
    tensors = {}
    if isinstance(loaded, dict):
        tensors = {k: v for k, v in loaded.items() if isinstance(k, str) and torch.is_tensor(v)}
    if any(k.startswith(_NET_PREFIX) for k in tensors):  # keep the network, drop metric states
        tensors = {
            k[len(_NET_PREFIX) :]: v for k, v in tensors.items() if k.startswith(_NET_PREFIX)
        }
    if not tensors:
        raise UserError(
            f"{path} loads, but holds no tensors (a {type(loaded).__name__}, not a state dict), "
            f"so it has no weights to use. Give a cnnlab checkpoint, a state dict saved with "
            f"torch.save(model.state_dict(), PATH) or a .safetensors file."
        )
    return {_strip_prefixes(k): v for k, v in tensors.items()}


def _strip_prefixes(key: str) -> str:
    while key.startswith(_KEY_PREFIXES):
        key = key.split(".", 1)[1]
    return key
