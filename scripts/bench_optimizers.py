"""Time one ``step()`` of each textbook update rule against its torch.optim twin (foreach=True).

    python scripts/bench_optimizers.py --repeats 100 --rounds 3

The parameters are ResNet-18's (11.7M numbers in 62 tensors) on the CPU (``--device cuda``: on
the GPU), with random gradients set once. Each optimizer gets its own copy of them and takes a
few warm-up steps (the first one creates its state); then the two of a pair alternate
``step()`` calls, so that both see the same machine load, and the median is kept. That is
repeated for a few rounds and the median round reported (the ratio is the median of the
rounds' ratios). Prints a Markdown table for docs/benchmarks.md. Run it on a quiet machine:
other work on the cores skews it.
"""

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime

import torch
from torch import nn

from cnnlab.models import get_model
from cnnlab.optim import SGD, Adadelta, AdaGrad, Adam, Momentum, RMSProp

# rule -> (ours, the torch twin), both with the same hyperparameters
PAIRS: dict[str, tuple[Callable, Callable]] = {
    "SGD": (
        lambda ps: SGD(ps, lr=0.1),
        lambda ps: torch.optim.SGD(ps, lr=0.1, foreach=True),
    ),
    "Momentum": (
        lambda ps: Momentum(ps, lr=0.1, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, foreach=True),
    ),
    "AdaGrad": (
        lambda ps: AdaGrad(ps, lr=0.01, eps=1e-7),
        lambda ps: torch.optim.Adagrad(ps, lr=0.01, eps=1e-7, foreach=True),
    ),
    "RMSProp": (
        lambda ps: RMSProp(ps, lr=0.001, rho=0.9, eps=1e-6),
        lambda ps: torch.optim.RMSprop(ps, lr=0.001, alpha=0.9, eps=1e-6, foreach=True),
    ),
    "Adam": (
        lambda ps: Adam(ps, lr=0.001),
        lambda ps: torch.optim.Adam(ps, lr=0.001, foreach=True),
    ),
    "Adadelta": (
        lambda ps: Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6),
        lambda ps: torch.optim.Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6, foreach=True),
    ),
}


def resnet18_weights_and_gradients(
    device: torch.device,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """ResNet-18's initial weights and fixed random gradients for them (small: nothing blows up)."""
    gen = torch.Generator().manual_seed(0)
    weights = [p.detach().to(device) for p in get_model("resnet18").parameters()]
    return weights, [1e-3 * torch.randn(w.shape, generator=gen).to(device) for w in weights]


def fresh_params(weights: list[torch.Tensor], grads: list[torch.Tensor]) -> list[nn.Parameter]:
    """A private copy of the parameters with their gradients set, for one optimizer."""
    params = [nn.Parameter(w.clone()) for w in weights]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    return params


def nothing_to_wait_for() -> None:
    """The CPU runs each step to its end before returning."""


def time_pair(
    ours: torch.optim.Optimizer,
    theirs: torch.optim.Optimizer,
    warmup: int,
    repeats: int,
    sync: Callable[[], None],
) -> tuple[float, float]:
    """Median seconds per step of each optimizer, the two alternating; ``sync`` waits for the
    device to finish queued work (CUDA runs kernels asynchronously)."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(warmup + repeats):
        for opt, record in zip((ours, theirs), times, strict=True):
            sync()
            start = time.perf_counter()
            opt.step()
            sync()
            if i >= warmup:
                record.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def cpu_name() -> str:
    """The CPU's model name where Linux says it, else the architecture."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100, help="timed steps per optimizer")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3, help="whole runs; the median is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu (the reference figures) or cuda")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        sync, where = torch.cuda.synchronize, torch.cuda.get_device_name(device)
    else:
        sync = nothing_to_wait_for
        where = f"{cpu_name()} ({os.cpu_count()} cores), {torch.get_num_threads()} threads"

    weights, grads = resnet18_weights_and_gradients(device)
    n = sum(w.numel() for w in weights)
    print(
        f"{datetime.now():%Y-%m-%d %H:%M}, {where}, torch {torch.__version__}; ResNet-18, "
        f"{len(weights)} tensors, {n / 1e6:.1f}M parameters; per round the median of "
        f"{args.repeats} steps after {args.warmup} warm-up, then the median of "
        f"{args.rounds} rounds\n"
    )
    rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in PAIRS}
    for _ in range(args.rounds):
        for name, (make_ours, make_theirs) in PAIRS.items():
            ours = make_ours(fresh_params(weights, grads))
            theirs = make_theirs(fresh_params(weights, grads))
            rounds[name].append(time_pair(ours, theirs, args.warmup, args.repeats, sync))
    print("| rule | ours (ms) | torch foreach (ms) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, times in rounds.items():
        t_ours = statistics.median(t for t, _ in times)
        t_theirs = statistics.median(t for _, t in times)
        ratio = statistics.median(a / b for a, b in times)
        print(f"| {name} | {1e3 * t_ours:.2f} | {1e3 * t_theirs:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
