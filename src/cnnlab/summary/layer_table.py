"""A layer-by-layer table of a network: shapes, receptive fields, parameters, mult-adds.

One forward pass on a zero image, with hooks on the listed modules, records what each layer
makes. Conv and pooling rows check the lecture's rule (N - F + 2P)/S + 1 and note where the
division is not exact (torch rounds down and drops the last pixels); the receptive field and
jump of each output come from ``receptive_field``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlab import nn as textbook
from cnnlab.errors import UserError
from cnnlab.summary.receptive_field import WINDOWED, FieldTracker, pair, window

_CONVS = (nn.Conv2d, textbook.Conv2d)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, textbook.MaxPool2d, textbook.AvgPool2d)


@dataclass
class Row:
    """One call of one listed module."""

    name: str
    kernel: str
    output: str
    params: int
    macs: int
    fc_params: int | None = None
    notes: list[str] = field(default_factory=list)
    rf: float | None = None  # side of the square of input pixels one output unit sees
    jump: float | None = None  # input pixels between neighbouring output units


@dataclass
class LayerTable:
    """The rows of a model and its totals."""

    rows: list[Row]
    total_params: int
    trainable_params: int
    total_macs: int


def formula(n: int, f: int, s: int, p: int) -> tuple[str, float]:
    """The lecture's output-size formula with the numbers filled in, and its value."""
    size = (n - f + 2 * p) / s + 1
    return f"({n} - {f} + 2*{p})/{s} + 1 = {size:g}", size


def _size_notes(module: nn.Module, in_hw: tuple[int, ...], out_hw: tuple[int, ...]) -> list[str]:
    """A note per side whose division (N - F + 2P)/S + 1 leaves a remainder."""
    if not isinstance(module, WINDOWED) or len(in_hw) != 2 or len(out_hw) != 2:
        return []
    notes = []
    for side, n, f, s, p, got in zip(("H", "W"), in_hw, *window(module), out_hw, strict=True):
        text, size = formula(n, f, s, p)
        if size != int(size) and (side == "H" or in_hw[0] != in_hw[1]):
            kept = "the last pixels are dropped" if got < size else "ceil_mode pads the end"
            notes.append(f"{text}: torch keeps {got}, {kept}")
    return notes


def kernel_text(module: nn.Module) -> str:
    """``11x11x3x96`` for a conv (kh x kw x in x out; ``3x3x512x1024 rate 12`` when dilated),
    ``3x3`` for a pool, ``in x out`` for FC."""
    if isinstance(module, _CONVS):
        kh, kw = module.kernel_size
        rate = f" rate {module.dilation[0]}" if max(module.dilation) > 1 else ""
        per_filter = module.in_channels // getattr(module, "groups", 1)
        return f"{kh}x{kw}x{per_filter}x{module.out_channels}{rate}"
    if isinstance(module, _POOLS):
        kh, kw = pair(module.kernel_size)
        return f"{kh}x{kw}"
    if isinstance(module, nn.Linear):
        return f"{module.in_features}x{module.out_features}"
    return ""


def macs(module: nn.Module, out: torch.Tensor) -> int:
    """Multiply-accumulates of one call: conv and linear layers; others count as 0."""
    if isinstance(module, _CONVS):
        kh, kw = module.kernel_size
        return out.numel() * (module.in_channels // getattr(module, "groups", 1)) * kh * kw
    if isinstance(module, nn.Linear):
        return out.numel() // module.out_features * module.in_features * module.out_features
    return 0


def shape_text(out: torch.Tensor) -> str:
    """``96 x 55 x 55`` for one image's output (the batch dimension left out)."""
    return " x ".join(str(d) for d in out.shape[1:])


def listed_modules(model: nn.Module, depth: int | None) -> dict[str, nn.Module]:
    """Leaf modules, or with ``depth`` the modules ``depth`` levels down (and shallower leaves)."""
    chosen = {}
    for name, module in model.named_modules():
        if not name:
            continue
        level = name.count(".") + 1
        is_leaf = next(module.children(), None) is None
        if (depth is None and is_leaf) or (
            depth is not None and (level == depth or (is_leaf and level < depth))
        ):
            chosen[name] = module
    return chosen


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def too_small(model: nn.Module, start: str | None, size: int) -> UserError | None:
    """Walk the leaf windows after ``start`` from side ``size``; the first whose output < 1."""
    seen = start is None
    for name, module in model.named_modules():
        if not seen:
            seen = name == start
            continue
        if isinstance(module, WINDOWED):
            (f, _), (s, _), (p, _) = window(module)
            text, new = formula(size, f, s, p)
            if new < 1:
                return UserError(
                    f"The input is too small for this model: layer {name} ({kernel_text(module)}"
                    f", stride {s}, padding {p}) gets {size}x{size} and (N - F + 2P)/S + 1 = "
                    f"{text} is below 1. Use a larger input_size."
                )
            size = int(new)
    return None


def layer_table(
    model: nn.Module, input_size: int, in_channels: int, depth: int | None = None
) -> LayerTable:
    """Run one zero image through ``model`` and tabulate every listed module's call."""
    listed = listed_modules(model, depth)
    leaves = listed_modules(model, None)
    rows: list[Row] = []
    leaf_macs: list[tuple[str, int]] = []
    counted: set[str] = set()
    last = {"done": None, "side": input_size}
    fields = FieldTracker(model)

    def hook(name: str, module: nn.Module) -> Callable[..., None]:
        def record(_mod, inputs, out) -> None:
            if not isinstance(out, torch.Tensor):
                return
            x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            if name in leaves:
                leaf_macs.append((name, macs(module, out)))
                last["done"] = name
                if out.dim() == 4:
                    last["side"] = out.shape[-1]
            if name not in listed:
                return
            own = name in leaves
            params = 0 if name in counted else _params(module)
            counted.add(name)
            fc = None
            if isinstance(module, (*_CONVS, nn.Linear)) and x is not None:
                n_in, n_out = x[0].numel(), out[0].numel()
                fc = n_in * n_out + n_out
            inner = sum(m for n, m in leaf_macs if n == name or n.startswith(name + "."))
            notes = (
                _size_notes(module, tuple(x.shape[2:]), tuple(out.shape[2:]))
                if x is not None
                else []
            )
            seen = fields.get(out)
            rows.append(
                Row(
                    name,
                    kernel_text(module) if own else "",
                    shape_text(out),
                    params,
                    macs(module, out) if own else inner,
                    fc,
                    notes,
                    rf=None if seen is None else seen.rf,
                    jump=None if seen is None else seen.jump,
                )
            )

        return record

    handles = [m.register_forward_hook(hook(n, m)) for n, m in {**leaves, **listed}.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), fields:
            image = torch.zeros(1, in_channels, input_size, input_size)
            fields.start(image)
            model(image)
    except (UserError, RuntimeError, ValueError) as e:
        error = too_small(model, last["done"], last["side"])
        if error is not None:
            raise error from None
        if isinstance(e, UserError):
            raise
        raise UserError(
            f"The model failed on a {in_channels}x{input_size}x{input_size} input after layer "
            f"{last['done'] or '(none)'}: {e}"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    total = _params(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return LayerTable(rows, total, trainable, sum(m for _, m in leaf_macs))


def big(n: int) -> str:
    """Thousands separators below a billion, e-notation above: ``34,944``, ``4.37e10``."""
    if n < 10**9:
        return f"{n:,}"
    mantissa, exponent = f"{n:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def pixels(value: float | None) -> str:
    """A receptive field or jump in input pixels: ``195``, ``0.28`` after an upsampling, ``-``
    where the output has none (detections, sampled boxes)."""
    return "-" if value is None else f"{round(value, 2):g}"


def render(table: LayerTable) -> str:
    """The table as text: one row per call, notes under their row, then the totals."""
    head = ("Layer", "Kernel", "Output", "RF", "Jump", "Params", "Mult-adds", "Params if FC")
    cells = [
        (
            r.name,
            r.kernel or "-",
            r.output,
            pixels(r.rf),
            pixels(r.jump),
            f"{r.params:,}",
            f"{r.macs:,}",
            "-" if r.fc_params is None else big(r.fc_params),
        )
        for r in table.rows
    ]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]

    def line(c: tuple[str, ...]) -> str:
        left = [c[i].ljust(widths[i]) for i in range(3)]
        right = [c[i].rjust(widths[i]) for i in range(3, len(head))]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(line(head))
    out = [rule, line(head), rule]
    for row, c in zip(table.rows, cells, strict=True):
        out.append(line(c))
        out += [f"    note: {n}" for n in row.notes]
    out += [
        rule,
        f"Total params: {table.total_params:,}",
        f"Trainable params: {table.trainable_params:,}",
        f"Non-trainable params: {table.total_params - table.trainable_params:,}",
        f"Total mult-adds: {table.total_macs:,}",
    ]
    return "\n".join(out)
