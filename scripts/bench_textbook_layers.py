"""Time one training step of a network built from torch's layers against the same network with
cnnlab's textbook layers (``model.layers=textbook``).

    python scripts/bench_textbook_layers.py --repeats 20 --rounds 3

A step is forward, cross-entropy, backward and an SGD update on a random batch of the size the
digits runs use. Both networks start from the same weights (the textbook one is a copy with its
convolutions, pools and batch norms swapped); their steps alternate so that both see the same
machine load, the median step of each is kept, and the median of a few rounds is reported.
Prints a Markdown table for docs/benchmarks.md. Run it on a quiet machine.
"""

import argparse
import copy
import os
import statistics
import time
from datetime import datetime

import torch
from bench_optimizers import cpu_name
from torch import nn

from cnnlab.models import get_model
from cnnlab.models.textbook import use_textbook_layers

# name, builder arguments, input (channels, side), batch
CASES = [
    ("lenet", {}, (1, 32), 64),
    ("alexnet_2012", {"small_input": True}, (1, 32), 64),
    ("vgg11_bn", {"small_input": True}, (1, 32), 64),
    ("resnet20", {}, (1, 32), 64),
]


def step_time(net: nn.Module, opt: torch.optim.Optimizer, x, y) -> float:
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    return time.perf_counter() - start


def one_round(name: str, kwargs: dict, shape: tuple[int, int], batch: int, args) -> tuple:
    torch.manual_seed(0)
    built = get_model(name, num_classes=10, in_channels=shape[0], **kwargs)
    textbook = use_textbook_layers(copy.deepcopy(built))
    nets = (built, textbook)
    opts = [torch.optim.SGD(n.parameters(), lr=0.01) for n in nets]
    x = torch.randn(batch, shape[0], shape[1], shape[1])
    y = torch.randint(0, 10, (batch,))
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(args.warmup + args.repeats):
        for net, opt, record in zip(nets, opts, times, strict=True):
            t = step_time(net, opt, x, y)
            if i >= args.warmup:
                record.append(t)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per network")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3, help="whole runs; the median is kept")
    args = parser.parse_args()
    where = f"{cpu_name()} ({os.cpu_count()} cores), {torch.get_num_threads()} threads"
    print(
        f"{datetime.now():%Y-%m-%d %H:%M}, {where}, torch {torch.__version__}; one SGD training "
        f"step, median of {args.repeats} after {args.warmup} warm-up, median of {args.rounds} "
        f"rounds\n"
    )
    print("| Model (input, batch) | torch layers (ms) | textbook layers (ms) | textbook / torch |")
    print("| --- | ---: | ---: | ---: |")
    for name, kwargs, shape, batch in CASES:
        rounds = [one_round(name, kwargs, shape, batch, args) for _ in range(args.rounds)]
        torch_ms = statistics.median(r[0] for r in rounds) * 1e3
        ours_ms = statistics.median(r[1] for r in rounds) * 1e3
        ratio = statistics.median(r[1] / r[0] for r in rounds)
        size = f"{shape[0]}x{shape[1]}x{shape[1]}, {batch}"
        print(f"| {name} ({size}) | {torch_ms:.1f} | {ours_ms:.1f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
