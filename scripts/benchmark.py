"""Framework overhead: cnnlab against a plain PyTorch loop written here, same model and data.

    python scripts/benchmark.py --cpu [--out cpu.json]     # minutes on two cores
    python scripts/benchmark.py --gpu --out gpu.json       # under 6 minutes on one H200
    python scripts/benchmark.py --gpu --dry-run            # the GPU section, tiny, on the CPU

--cpu: training throughput (images/s over the epochs after the first, validation each epoch
included on both sides) of ``cnnlab.cli.train.train`` and of the plain loop, for LeNet on digits
(cnnlab's default run) and ResNet-20 on 32x32 FakeData; then the whole-process wall time of
``cnnlab-train trainer.max_epochs=20`` against this script's plain loop run as a process. Each
comparison runs ``--rounds`` times with the two sides in turn (a shared machine's slow spells
move single runs by 10-20%): the medians and the median ratio are reported, the best for the
process times.

--gpu: images/s for ResNet-18 at 32x32 and ResNet-50 at 224x224, bf16 autocast and
channels-last, with and without torch.compile, cnnlab (ClassificationModule + Lightning Trainer,
as cnnlab builds them) against the plain loop in the same process, on synthetic batches already
on the GPU (data loading is not measured); plus the card's bf16 matmul rate and the model-FLOPs
utilisation. This path imports nothing from Hydra or OmegaConf (the GPU image has neither).
Every measurement is tried on its own: an error is recorded in the JSON and the rest go on.
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path
from statistics import median

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parent.parent
RESULTS: dict = {"rows": [], "errors": []}
CNNLAB_OVERRIDES: list[str] = []  # --cnnlab-override: appended to every cnnlab run of --cpu
ROUNDS = 3  # --rounds: --cpu runs each comparison this many times, the two sides in turn
THREADS = 0  # --threads: torch's intra-op threads for --cpu; 0: one per CPU
ONLY: list[str] = []  # --only: the --cpu comparisons (lenet, resnet, process); empty: all


def say(*args) -> None:
    print(*args, flush=True)


def save(out: str | None) -> None:
    """Write what was measured so far: a run cut short still leaves its rows."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(RESULTS, indent=2, default=str))


def attempt(name: str, fn, out: str | None):
    """Run one measurement; on an error record it and go on with the next."""
    say(f"--- {name}")
    try:
        return fn()
    except Exception as e:  # noqa: BLE001  (one failure must not cost the other figures)
        tail = traceback.format_exc().strip().splitlines()[-6:]
        RESULTS["errors"].append({"measurement": name, "error": repr(e), "traceback": tail})
        say(f"    FAILED: {e!r}")
        return None
    finally:
        save(out)


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


# ---------------------------------------------------------------------------------------------
# The plain loop: what a user writes by hand.


def random_shift(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Each image moved by up to ``shift`` pixels each way (zero padding), in one batched gather."""
    n, c, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * shift + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (n, 1, 1, w)
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[torch.arange(n, device=x.device)[:, None, None, None], chans, rows, cols]


def digits_tensors() -> dict[str, torch.Tensor]:
    """scikit-learn's digits as cnnlab's ``data=digits`` splits them (70/15/15, stratified,
    seed 0), upsampled to 32x32 and normalised with the same statistics. No Lightning import:
    the plain process pays only for what a hand-written script imports."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    x = (x - 0.3056) / 0.3237  # cnnlab's DigitsDataModule mean and std
    y = torch.tensor(digits.target)
    idx = list(range(len(y)))
    train_idx, rest = train_test_split(idx, test_size=0.3, stratify=y, random_state=0)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=0)
    return {
        "x_train": x[train_idx],
        "y_train": y[train_idx],
        "x_val": x[val_idx],
        "y_val": y[val_idx],
        "x_test": x[test_idx],
        "y_test": y[test_idx],
    }


def plain_fit(net, data, epochs, batch_size, lr, shift=0, test=False, seed=42) -> dict:
    """Adam with a per-step cosine schedule (cnnlab's defaults), shuffled batches of in-memory
    tensors, validation after each epoch, the best weights kept and tested at the end."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(data["y_train"]) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    epoch_times, best, best_state = [], -1.0, None
    for _ in range(epochs):
        start = time.perf_counter()
        net.train()
        order = torch.randperm(len(data["y_train"]))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x, y = data["x_train"][idx], data["y_train"][idx]
            if shift:
                x = random_shift(x, shift)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = evaluate(net, data["x_val"], data["y_val"], batch_size)
        if acc > best:
            best, best_state = acc, {k: v.clone() for k, v in net.state_dict().items()}
        epoch_times.append(time.perf_counter() - start)
    result = {"epoch_times": epoch_times, "val_acc": best}
    if test:
        net.load_state_dict(best_state)
        result["test_acc"] = evaluate(net, data["x_test"], data["y_test"], batch_size)
    return result


@torch.no_grad()
def evaluate(net, x, y, batch_size) -> float:
    net.eval()
    correct = sum(
        int((net(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
        for i in range(0, len(y), batch_size)
    )
    return correct / len(y)


def plain_digits_process(epochs: int) -> None:
    """The whole hand-written run, as its own process: load, train, validate, test, save."""
    from cnnlab.models.lenet import lenet  # the same network; imports torch only

    start = time.perf_counter()
    data = digits_tensors()
    net = lenet(num_classes=10, in_channels=1)
    result = plain_fit(net, data, epochs, batch_size=64, lr=0.002, shift=2, test=True)
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(net.state_dict(), Path(tmp) / "best.pt")
    say(json.dumps({"test_acc": result["test_acc"], "seconds": time.perf_counter() - start}))


# ---------------------------------------------------------------------------------------------
# CPU section


def images_per_second(epoch_times: list[float], images_per_epoch: int) -> float:
    """Throughput over the epochs after the first (the first pays for warm-up)."""
    timed = epoch_times[1:]
    return images_per_epoch * len(timed) / sum(timed)


def cnnlab_fit(overrides: list[str], run_dir: Path) -> dict:
    """cnnlab's own train() on a composed config, with an epoch timer added as a callback."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from cnnlab.cli.train import train
    from cnnlab.factory.configs import config_dir

    GlobalHydra.instance().clear()
    timer = "+callbacks.bench_timer._target_=__main__.EpochTimer"
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*overrides, timer, f"hydra.run.dir={run_dir}"],
            return_hydra_config=True,
        )
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    run_dir.mkdir(parents=True, exist_ok=True)
    timer = _epoch_timer_class()
    timer.epoch_times, timer.images = [], 0
    metrics = train(cfg)
    GlobalHydra.instance().clear()
    return {"epoch_times": list(timer.epoch_times), "metrics": metrics}


def _epoch_timer_class():
    """The timer callback, made once (Hydra finds it as ``__main__.EpochTimer``)."""
    if "EpochTimer" in globals():
        return globals()["EpochTimer"]
    import lightning.pytorch as pl

    class EpochTimerCallback(pl.Callback):
        """Wall time of each training epoch, its validation included (Lightning validates
        before ``on_train_epoch_end``), and the number of training images seen."""

        epoch_times: list[float] = []
        images = 0

        def on_train_epoch_start(self, trainer, pl_module):
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            type(self).images += len(batch[1])

        def on_train_epoch_end(self, trainer, pl_module):
            type(self).epoch_times.append(time.perf_counter() - self._start)

    globals()["EpochTimer"] = EpochTimerCallback
    return EpochTimerCallback


def __getattr__(name):  # __main__.EpochTimer, built lazily so --gpu never imports it early
    if name == "EpochTimer":
        return _epoch_timer_class()
    raise AttributeError(name)


def fake_tensors(dm) -> dict[str, torch.Tensor]:
    """cnnlab's FakeData splits, transformed once into tensors (augmentation off)."""
    dm.setup("fit")
    out = {}
    for split, ds in (("train", dm.train_set), ("val", dm.val_set)):
        xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)
        out[f"x_{split}"], out[f"y_{split}"] = torch.stack(xs), torch.tensor(ys)
    return out


def cpu_section(out: str | None, tmp: Path) -> None:
    torch.set_num_threads(THREADS or os.cpu_count() or 1)
    from cnnlab.models.lenet import lenet
    from cnnlab.models.resnet_cifar import resnet20

    def lenet_rows():
        epochs, n = 8, 1257  # n: training digits
        rounds = []
        for r in range(ROUNDS):  # alternate the sides: a slow spell of the machine hits both
            torch.manual_seed(42)
            plain = plain_fit(lenet(), digits_tensors(), epochs, 64, 0.002, shift=2)
            overrides = [f"trainer.max_epochs={epochs}", *CNNLAB_OVERRIDES]
            mine = cnnlab_fit(overrides, tmp / f"lenet{r}")
            rounds.append((mine, plain))
        rows = compare_rows("LeNet-5, digits 32x32, batch 64, CPU", rounds, n)
        rows[0]["val_acc"] = rounds[-1][0]["metrics"].get("val/acc")
        rows[1]["val_acc"] = rounds[-1][1]["val_acc"]

    def resnet_rows():
        from cnnlab.data.fake import FakeDataModule

        size, epochs, batch = 1024, 3, 128
        data_overrides = [
            "data=fake",
            f"data.train_size={size}",
            "data.val_size=256",
            "data.test_size=64",
            f"data.batch_size={batch}",
            "data.augment=false",
        ]
        overrides = [*data_overrides, "model=resnet20", f"trainer.max_epochs={epochs}"]
        overrides += CNNLAB_OVERRIDES
        dm = FakeDataModule(
            root=str(tmp), train_size=size, val_size=256, test_size=64, batch_size=batch,
            augment=False,
        )  # fmt: skip
        data = fake_tensors(dm)
        rounds = []
        for r in range(ROUNDS):
            torch.manual_seed(42)
            plain = plain_fit(resnet20(num_classes=10, in_channels=3), data, epochs, batch, 0.002)
            rounds.append((cnnlab_fit(overrides, tmp / f"resnet20-{r}"), plain))
        compare_rows("ResNet-20, FakeData 32x32, batch 128, CPU", rounds, size)

    def whole_process():
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        runs = {"cnnlab": [], "plain": []}
        for _ in range(ROUNDS):
            for side in ("cnnlab", "plain"):
                if side == "cnnlab":
                    run_dir = tempfile.mkdtemp(dir=tmp)
                    cmd = ["cnnlab-train", "trainer.max_epochs=20", f"hydra.run.dir={run_dir}"]
                    cmd += CNNLAB_OVERRIDES
                else:
                    cmd = [sys.executable, __file__, "--plain-digits-process", "20"]
                start = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
                seconds = time.perf_counter() - start
                if done.returncode:
                    raise RuntimeError(f"{cmd} failed: {done.stderr[-800:]}")
                runs[side].append(seconds)
                say(f"    {side}: {seconds:.1f} s")
        best = {side: min(times) for side, times in runs.items()}
        row = {
            "measurement": f"whole process, 20 epochs LeNet-5 on digits (s, best of {ROUNDS})",
            "cnnlab_s": round(best["cnnlab"], 2),
            "plain_s": round(best["plain"], 2),
            "ratio_cnnlab_over_plain": round(best["cnnlab"] / best["plain"], 3),
            "all_runs_s": runs,
            "load_average": os.getloadavg(),
        }
        RESULTS["rows"].append(row)
        say(f"    {row}")

    parts = {"lenet": lenet_rows, "resnet": resnet_rows, "process": whole_process}
    names = {
        "lenet": "LeNet-5 on digits, throughput",
        "resnet": "ResNet-20 on FakeData, throughput",
        "process": "LeNet-5 on digits, whole process",
    }
    for part in ONLY or parts:
        attempt(names[part], parts[part], out)


def compare_rows(name: str, rounds: list[tuple[dict, dict]], images: int) -> list[dict]:
    """Rows for (cnnlab, plain) fits run in turn: the median images/s of each side and the
    median of the rounds' ratios (each round's two fits ran back to back)."""
    ours = [images_per_second(mine["epoch_times"], images) for mine, _ in rounds]
    theirs = [images_per_second(plain["epoch_times"], images) for _, plain in rounds]
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    rows = [
        {"measurement": name, "side": "cnnlab", "images_per_s": round(median(ours), 1)},
        {"measurement": name, "side": "plain", "images_per_s": round(median(theirs), 1)},
    ]
    rows[0]["ratio_to_plain"] = round(median(ratios), 3)
    rows[0]["round_ratios"] = [round(r, 3) for r in ratios]
    rows[0]["load_average"] = os.getloadavg()
    RESULTS["rows"].extend(rows)
    say(f"    cnnlab {median(ours):.0f} img/s, plain {median(theirs):.0f} img/s, ratio "
        f"{median(ratios):.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)})")  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------
# GPU section


def forward_macs(net: nn.Module, image_size: int) -> int:
    """Multiply-adds of one image's forward pass in the convolutions and linear layers (norms,
    activations and pooling add well under 1% and are left out, as papers count).

    Checked against torchinfo's mult-adds (2026-11, CPU): ResNet-18 at 32x32 0.03702 GMACs
    (torchinfo 0.03703), ResNet-50 at 224x224 4.0892 (torchinfo 4.0892). Counted here so that
    the GPU image needs no torchinfo."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            total += output.numel() * per_output
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in net.modules()]
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, image_size, image_size))
    for h in hooks:
        h.remove()
    return total


def bf16_matmul_tflops(device: str, n: int, repeats: int) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def synthetic_batches(device, count, batch, size):
    """``count`` distinct batches of noise and labels, made on the device once."""
    g = torch.Generator(device=device).manual_seed(0)
    return [
        (
            torch.randn(batch, 3, size, size, device=device, generator=g),
            torch.randint(0, classes_for(size), (batch,), device=device, generator=g),
        )
        for _ in range(count)
    ]


def build_net(arch: str, size: int):
    """cnnlab's builder for ``arch`` (ImageNet layout: cnnlab's ResNet-18/50 have no small-input
    stem), 10 classes for 32x32 images as on CIFAR-10, 1,000 for 224x224 as on ImageNet."""
    from cnnlab.models import resnet

    return getattr(resnet, arch)(num_classes=classes_for(size), in_channels=3)


def classes_for(size: int) -> int:
    return 10 if size <= 64 else 1000


def plain_gpu_run(net, batches, device, warmup, steps, compile_, channels_last) -> float:
    """Plain loop: SGD with momentum, bf16 autocast, channels-last; images/s after warm-up."""
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    model = torch.compile(net, dynamic=False) if compile_ else net  # as cnnlab compiles
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    model.train()
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            start = time.perf_counter()
        x, y = batches[step % len(batches)]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return steps * len(batches[0][1]) / (time.perf_counter() - start)


class Cycle:
    """``length`` batches taken in turn from ``batches`` (a plain list would be read by
    Lightning as one dataloader per element)."""

    def __init__(self, batches: list, length: int) -> None:
        self.batches, self.length = batches, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        return (self.batches[i % len(self.batches)] for i in range(self.length))


def cnnlab_gpu_run(net, batches, device, warmup, steps, compile_, channels_last) -> float:
    """cnnlab: the speed switches of models/speed.py, ClassificationModule and a Lightning
    Trainer as cnnlab's trainer=gpu builds it, without logger, checkpoints or progress bar."""
    import lightning.pytorch as pl

    from cnnlab.models.speed import apply_speed_switches
    from cnnlab.tasks.classification import ClassificationModule

    class StepTimer(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == warmup:
                sync(device)
                self.start = time.perf_counter()

        def on_train_end(self, trainer, pl_module):
            sync(device)
            self.seconds = time.perf_counter() - self.start

    net = apply_speed_switches(net, channels_last=channels_last, compile=compile_)
    module = ClassificationModule(
        net=net,
        optimizer=partial(torch.optim.SGD, lr=0.01, momentum=0.9),
        num_classes=net.fc.out_features,
    )
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed",
        benchmark=device == "cuda",
        max_steps=warmup + steps,
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=5,  # cnnlab's trainer default
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=Cycle(batches, warmup + steps))
    return steps * len(batches[0][1]) / timer.seconds


def gpu_case(run, case, side, batches, device, warmup, steps, macs) -> float:
    """One side of one case: images/s, a row in RESULTS with the model-FLOPs utilisation."""
    torch.manual_seed(0)
    arch = case["arch"]
    net = build_net(arch, case["image_size"]).to(device)
    start = time.perf_counter()
    speed = run(net, batches, device, warmup, steps, case["compile"], True)
    row = {
        "measurement": f"{arch} {case['image_size']}px batch {case['batch']} bf16 channels-last "
        f"compile={case['compile']} {side}",
        **case,
        "side": side,
        "images_per_s": round(speed, 1),
        "wall_s_with_warmup": round(time.perf_counter() - start, 1),
        "timed_steps": steps,
    }
    peak = RESULTS.get("matmul_bf16_tflops")
    if arch in macs and peak:
        train_flops = 3 * 2 * macs[arch]  # backward ~ twice the forward; 2 FLOPs per MAC
        tflops = speed * train_flops / 1e12
        row["model_tflops"] = round(tflops, 1)
        row["mfu_vs_measured_matmul"] = round(tflops / peak, 3)
    RESULTS["rows"].append(row)
    say(f"    {speed:.0f} img/s  ({row['wall_s_with_warmup']} s with warm-up)")
    return speed


def gpu_section(out: str | None, dry_run: bool, compile_too: bool, budget_s: float) -> None:
    device = "cuda" if torch.cuda.is_available() and not dry_run else "cpu"
    if device == "cpu" and not dry_run:
        RESULTS["rows"].append({"measurement": "GPU section", "result": "not measured: no GPU"})
        say("No GPU: the GPU section is not measured (use --dry-run to try its code on the CPU).")
        return
    begun = time.perf_counter()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    if device == "cuda":
        torch.backends.cudnn.benchmark = True

    n = 1024 if dry_run else 8192
    peak = attempt(
        f"bf16 matmul {n}^3",
        lambda: bf16_matmul_tflops(device, n, 2 if dry_run else 50),
        out,
    )
    if peak:
        RESULTS["matmul_bf16_tflops"] = round(peak, 1)
        say(f"    {peak:.1f} TFLOP/s")

    # (arch, image size, batch, warm-up steps without / with compile, timed steps)
    cases = [("resnet18", 32, 512, 15, 20, 200), ("resnet50", 224, 256, 10, 15, 60)]
    if dry_run:
        cases = [("resnet18", 32, 2, 1, 1, 2), ("resnet50", 32, 2, 1, 1, 2)]  # bf16 on a CPU: slow
    macs = {}
    for arch, size, *_ in cases:
        got = attempt(f"forward MACs {arch} {size}px", lambda a=arch, s=size: forward_macs(
            build_net(a, s), s), out)  # fmt: skip
        if got:
            macs[arch] = got
            say(f"    {got / 1e9:.3f} GMACs per image")
    RESULTS["forward_gmacs"] = {k: round(v / 1e9, 4) for k, v in macs.items()}

    # Eager first (cheap, the figures that matter most), compiled after, as time allows.
    plan = [(c, False) for c in cases] + ([(c, True) for c in cases] if compile_too else [])
    for (arch, size, batch, warm, warm_compiled, steps), compiled in plan:
        try:
            batches = synthetic_batches(device, 4, batch, size)
        except Exception as e:  # noqa: BLE001
            RESULTS["errors"].append({"measurement": f"{arch} data", "error": repr(e)})
            continue
        warmup = warm_compiled if compiled else warm
        speeds = {}
        for side, run in (("plain", plain_gpu_run), ("cnnlab", cnnlab_gpu_run)):
            elapsed = time.perf_counter() - begun
            needed = (100 if arch == "resnet50" else 50) if compiled else 15  # seconds, rough
            if elapsed + needed > budget_s:
                say(f"--- skipped {arch} compile={compiled} {side}: {elapsed:.0f} s used")
                skip = {"measurement": f"{arch} compile={compiled} {side}", "error": "skipped"}
                RESULTS["errors"].append({**skip, "why": f"time budget {budget_s:.0f} s"})
                continue
            case = {"arch": arch, "image_size": size, "batch": batch, "compile": compiled}
            name = f"{arch} {size}px batch {batch} bf16 channels-last compile={compiled} {side}"
            speeds[side] = attempt(
                name,
                partial(gpu_case, run, case, side, batches, device, warmup, steps, macs),
                out,
            )
            if device == "cuda":
                torch.cuda.empty_cache()
        if speeds.get("plain") and speeds.get("cnnlab"):
            ratio = speeds["cnnlab"] / speeds["plain"]
            RESULTS["rows"][-1]["ratio_to_plain"] = round(ratio, 3)
            say(f"    cnnlab / plain = {ratio:.3f}")
        del batches
    RESULTS["gpu_section_s"] = round(time.perf_counter() - begun, 1)
    save(out)


def markdown_table() -> str:
    keys = ["measurement", "images_per_s", "ratio_to_plain", "model_tflops",
            "mfu_vs_measured_matmul", "cnnlab_s", "plain_s", "ratio_cnnlab_over_plain",
            "side", "result"]  # fmt: skip
    used = [k for k in keys if any(k in row for row in RESULTS["rows"])]
    lines = ["| " + " | ".join(used) + " |", "|" + "---|" * len(used)]
    for row in RESULTS["rows"]:
        lines.append("| " + " | ".join(str(row.get(k, "")) for k in used) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="the CPU overhead section")
    parser.add_argument("--gpu", action="store_true", help="the GPU section (CUDA)")
    parser.add_argument("--dry-run", action="store_true", help="GPU section: tiny, on the CPU")
    parser.add_argument("--no-compile", action="store_true", help="GPU section: eager only")
    parser.add_argument("--compile-on-cpu", action="store_true", help="--dry-run with compile")
    parser.add_argument("--budget", type=float, default=330.0, help="GPU section: seconds")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument(
        "--cnnlab-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--cpu: an override for every cnnlab run, e.g. data.in_memory=true (repeatable)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="--cpu: runs of each comparison, sides in turn"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="--cpu: torch threads (0: one per CPU)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=["lenet", "resnet", "process"],
        help="--cpu: run only this comparison (repeatable)",
    )
    parser.add_argument(
        "--plain-digits-process", type=int, metavar="EPOCHS", help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    CNNLAB_OVERRIDES.extend(args.cnnlab_override)
    global ROUNDS, THREADS
    ROUNDS, THREADS = args.rounds, args.threads
    ONLY.extend(args.only)

    if args.plain_digits_process:
        plain_digits_process(args.plain_digits_process)
        return
    if not (args.cpu or args.gpu):
        parser.error("choose --cpu and/or --gpu")
    RESULTS["machine"] = machine()
    say(json.dumps(RESULTS["machine"]))
    if args.cpu:
        with tempfile.TemporaryDirectory() as tmp:
            cpu_section(args.out, Path(tmp))
    if args.gpu:
        compile_too = not args.no_compile and (args.compile_on_cpu or not args.dry_run)
        gpu_section(args.out, args.dry_run, compile_too, args.budget)
    RESULTS["machine"]["load_average_end"] = machine().get("load_average")
    save(args.out)
    say("\n" + markdown_table())
    if RESULTS["errors"]:
        say(f"\n{len(RESULTS['errors'])} measurement(s) failed or skipped: see 'errors'.")


if __name__ == "__main__":
    main()
