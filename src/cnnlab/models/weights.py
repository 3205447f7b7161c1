"""Pretrained weights into any cnnlab network: strict about the backbone, forgiving about the head.

``load_pretrained`` takes torchvision's published weights by name or a local file
(``cnnlab.models.weight_files`` reads both) and ``apply_state_dict`` puts them in:

- classifier-head layers (``parts.is_head_key``) whose shapes differ from the network's (1,000
  ImageNet classes in the file, 10 here) are left out and keep their fresh initialisation;
  head layers that fit (VGG's hidden fully connected layers) are loaded;
- the first convolution is adapted when only its input channels differ: the file's filters are
  averaged over their Cf channels, repeated Cn times and scaled by Cf/Cn (3 -> 1 sums over RGB,
  1 -> 3 repeats and divides by 3), so a grey image gives the same response either way;
- any other tensor that differs, is missing from the file or is in the file but not in the
  network is a UserError naming the tensors and shapes; head tensors of the file that the
  network lacks (e.g. auxiliary classifiers) are only reported. BatchNorm's
  ``num_batches_tracked`` counters never cause a failure.
"""

import logging
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.parts import first_conv, is_head_key
from cnnlab.models.registry import torchvision_archs
from cnnlab.models.weight_files import file_state_dict, torchvision_state_dict

__all__ = [
    "LoadReport",
    "apply_state_dict",
    "file_state_dict",
    "load_pretrained",
    "torchvision_state_dict",
]

log = logging.getLogger("cnnlab")

_MAX_LISTED = 10


@dataclass
class LoadReport:
    """What ``apply_state_dict`` did; ``lines()`` (and ``str()``) are the log lines."""

    source: str
    loaded: int  # tensors of the network set from the file
    total: int  # tensors in the network's state dict
    head_left_out: dict[str, str] = field(default_factory=dict)  # key -> why, with shapes
    unexpected: list[str] = field(default_factory=list)  # keys of the file the network lacks
    adapted_first_conv: tuple[str, int, int] | None = None  # (key, file channels, net channels)

    def lines(self) -> list[str]:
        lines = [f"loaded {self.loaded} of {self.total} tensors from {self.source}"]
        if self.head_left_out:
            items = [f"{k} ({why})" for k, why in self.head_left_out.items()]
            lines.append(
                "classifier head left out, it keeps its fresh initialisation: "
                + _listed(items, "; ")
            )
        if self.adapted_first_conv is not None:
            key, cf, cn = self.adapted_first_conv
            lines.append(
                f"first convolution {key} adapted from {cf} to {cn} input channels ({_how(cf, cn)})"
            )
        if self.unexpected:
            lines.append(
                f"ignored {len(self.unexpected)} tensors of the file that the network does not "
                f"have: " + _listed(self.unexpected)
            )
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


def load_pretrained(
    net: nn.Module,
    *,
    arch: str | None = None,
    weights: str | None = None,
    path: str | os.PathLike | None = None,
    new_head: bool = False,
) -> LoadReport:
    """Load torchvision's ``weights`` for ``arch``, or the file at ``path``, into ``net``.

    ``new_head``: leave the classifier head out of what is loaded, whatever its shapes (a
    fine-tuned network gets a new classifier for its new task); the head keeps its fresh
    initialisation and the log names what was left out.
    """
    if (weights is None) == (path is None):
        raise UserError(
            "Give pretrained weights one way: torchvision's weights by name (e.g. IMAGENET1K_V1, "
            "for the model's architecture) or the path of a local weights file, not both and "
            "not neither."
        )
    if weights is not None:
        if arch is None:
            raise UserError(
                f"torchvision weights {weights!r} were asked for without naming the architecture "
                f"they belong to (one of {', '.join(torchvision_archs())})."
            )
        state = torchvision_state_dict(arch, weights)
        source = f"torchvision's {weights} weights for {arch}"
    else:
        state, source = file_state_dict(path), str(path)
    if new_head:
        head = sorted(k for k in state if is_head_key(net, k))
        state = {k: v for k, v in state.items() if k not in head}
        if head:
            log.info(
                "A new classifier head (finetune.new_head=true): not loaded from %s: %s",
                source,
                ", ".join(head),
            )
    return apply_state_dict(net, state, source)


def apply_state_dict(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> LoadReport:
    """Put ``state`` into ``net`` (see the module docstring); logs and returns the report."""
    own = net.state_dict()
    conv_key = first_conv(net)[0] + ".weight"
    take: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    adapted = None
    head: dict[str, list[str]] = {}  # head layer -> its keys
    for key, mine in own.items():
        theirs = state.get(key)
        if is_head_key(net, key):
            head.setdefault(key.rpartition(".")[0], []).append(key)
        elif _is_counter(key):
            if theirs is not None and theirs.shape == mine.shape:
                take[key] = theirs
        elif theirs is None:
            mismatched.append(f"{key} (missing from the file, {_shape(mine)} here)")
        elif theirs.shape == mine.shape:
            take[key] = theirs
        elif key == conv_key and _only_channels_differ(theirs, mine):
            take[key] = adapt_first_conv(theirs, mine.shape[1])
            adapted = (key, theirs.shape[1], mine.shape[1])
        else:
            mismatched.append(f"{key} ({_shape(theirs)} in the file, {_shape(mine)} here)")
    unexpected = [k for k in state if k not in own and not _is_counter(k)]
    mismatched += [
        f"{k} ({_shape(state[k])} in the file, not in this network)"
        for k in unexpected
        if not _declared_head_key(net, k)
    ]
    if mismatched:
        raise _mismatch_error(net, source, mismatched)
    head_left_out: dict[str, str] = {}
    for keys in head.values():
        why = {k: _head_problem(state.get(k), own[k]) for k in keys if not _is_counter(k)}
        if any(why.values()):
            head_left_out.update({k: w or "left out with its layer" for k, w in why.items()})
        else:
            take.update({k: state[k] for k in keys if k in state})
    net.load_state_dict(take, strict=False)
    report = LoadReport(source, len(take), len(own), head_left_out, unexpected, adapted)
    for line in report.lines():
        log.info(line)
    return report


def adapt_first_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Filters (O, Cf, k, k) -> (O, channels, k, k): mean over Cf, repeated, times Cf/channels."""
    cf = weight.shape[1]
    mean = weight.float().mean(dim=1, keepdim=True)
    return (mean.repeat(1, channels, 1, 1) * (cf / channels)).to(weight.dtype)


def _head_problem(theirs: torch.Tensor | None, mine: torch.Tensor) -> str:
    """Why a head tensor cannot be loaded ("" when it can)."""
    if theirs is None:
        return f"missing from the file, {_shape(mine)} here"
    if theirs.shape != mine.shape:
        return f"{_shape(theirs)} in the file, {_shape(mine)} here"
    if theirs.is_floating_point() and not torch.isfinite(theirs).all():
        return "not finite in the file"
    return ""


def _mismatch_error(net: nn.Module, source: str, mismatched: list[str]) -> UserError:
    return UserError(
        f"The weights from {source} do not fit this {type(net).__name__}: "
        f"{len(mismatched)} tensors differ: {_listed(mismatched, '; ')}. "
        f"The file looks like another architecture or layout. Check that model= names the "
        f"network the weights were trained for (e.g. resnet18, not resnet34 or resnet20), that "
        f"model.small_input matches (the small-input stem has other first-layer shapes), and "
        f"the other model options (the _bn variant, model.norm, model.aux_logits). Only the "
        f"classifier head and the first convolution's input channels may differ from the file."
    )


def _declared_head_key(net: nn.Module, key: str) -> bool:
    """Whether ``key`` lies under a head layer the class declares, present in ``net`` or not
    (GoogLeNet's auxiliary classifiers in a file for a network built without them)."""
    names = getattr(type(net), "head_names", ())
    return any(key == n or key.startswith(n + ".") for n in names)


def _only_channels_differ(theirs: torch.Tensor, mine: torch.Tensor) -> bool:
    return (
        theirs.dim() == mine.dim() == 4
        and theirs.shape[0] == mine.shape[0]
        and theirs.shape[2:] == mine.shape[2:]
    )


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(n) for n in t.shape) or "scalar"


def _how(cf: int, cn: int) -> str:
    if cn == 1:
        return f"summed over the file's {cf} channels"
    if cf == 1:
        return f"the file's channel repeated {cn} times and divided by {cn}"
    return f"averaged over the file's {cf} channels, repeated {cn} times, scaled by {cf}/{cn}"


def _listed(items: list[str], sep: str = ", ") -> str:
    shown = sep.join(items[:_MAX_LISTED])
    rest = len(items) - _MAX_LISTED
    return shown + (f" and {rest} more" if rest > 0 else "")
