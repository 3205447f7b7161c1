"""Speed switches: model.channels_last, model.compile, trainer=gpu, mixed precision, gradient
accumulation and clipping, composed from the real configs and run in-process on the CPU."""

import pytest
import torch
from torch import nn

from cnnlab.cli.train import train
from cnnlab.factory import build
from cnnlab.models import speed
from cnnlab.tasks.classification import ClassificationModule

# Four training batches of digits, one of validation and test: a few optimizer steps, seconds.
TINY = [
    "trainer.max_epochs=1",
    "trainer.enable_model_summary=false",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "~logger",
]


@pytest.mark.parametrize("model", ["lenet", "resnet20", "vgg11_bn", "fasterrcnn", "fcn8s"])
def test_switches_are_keys_of_every_model_without_plus(make_cfg, model):
    cfg = make_cfg([f"model={model}", "model.channels_last=true", "model.compile=true"])
    assert cfg.model.channels_last is True and cfg.model.compile is True
    plain = make_cfg([f"model={model}"])
    assert plain.model.channels_last is False and plain.model.compile is False


def test_trainer_gpu_turns_on_the_fast_defaults(make_cfg):
    cfg = make_cfg(["trainer=gpu"])
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.devices == 1
    assert cfg.trainer.precision == "bf16-mixed"
    assert cfg.trainer.benchmark is True
    assert cfg.model.channels_last is True and cfg.model.compile is False
    assert cfg.trainer.max_epochs == 20  # the rest of trainer/default.yaml is kept
    mine = make_cfg(["trainer=gpu", "trainer.precision=32", "model.channels_last=false"])
    assert mine.trainer.precision == 32 and mine.model.channels_last is False


def test_channels_last_keeps_outputs_and_state_dict_keys(make_cfg):
    cfg = make_cfg(["model=resnet20", "model.channels_last=true"])
    torch.manual_seed(0)
    fast = build.build_network(cfg.model, 10, 3, image_size=32)
    cfg.model.channels_last = False
    torch.manual_seed(0)
    plain = build.build_network(cfg.model, 10, 3, image_size=32)

    seen = []
    fast.register_forward_pre_hook(lambda m, args: seen.append(args[0]))  # after the switch's
    conv = next(m for m in fast.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert list(fast.state_dict()) == list(plain.state_dict())
    x = torch.randn(4, 3, 32, 32)
    fast.eval(), plain.eval()
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert x.is_contiguous()  # the caller's tensor is left as it was


def test_bf16_mixed_with_accumulation_and_clipping(make_cfg, monkeypatch):
    autocast, norms = [], []
    forward = ClassificationModule.forward
    clip = ClassificationModule.configure_gradient_clipping

    def recording_forward(self, x):
        if self.training:
            autocast.append(torch.is_autocast_enabled("cpu"))
        return forward(self, x)

    def recording_clip(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        clip(self, optimizer, gradient_clip_val, gradient_clip_algorithm)
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        norms.append(
            (
                gradient_clip_val,
                float(
                    torch.linalg.vector_norm(
                        torch.stack([torch.linalg.vector_norm(g) for g in grads])
                    )
                ),
            )
        )

    monkeypatch.setattr(ClassificationModule, "forward", recording_forward)
    monkeypatch.setattr(ClassificationModule, "configure_gradient_clipping", recording_clip)
    cfg = make_cfg(
        [
            *TINY,
            "trainer.precision=bf16-mixed",
            "+trainer.accumulate_grad_batches=2",
            "+trainer.gradient_clip_val=1.0",
            "optimizer.lr=1.0",  # a large rate makes large gradients for the clip to act on
        ]
    )
    metrics = train(cfg)
    assert autocast == [True] * 4  # four batches, each under bf16 autocast
    assert metrics["global_step"] == 2  # 4 batches, one optimizer step per 2
    assert [val for val, _ in norms] == [1.0, 1.0]
    assert all(norm <= 1.0 + 1e-4 for _, norm in norms)


@pytest.mark.slow  # a compiled training run, then a plain load
def test_channels_last_and_compile_train_and_checkpoint_loads_plain(
    make_cfg, monkeypatch, tmp_path
):
    # aot_eager traces and compiles the graphs as inductor does, without generating C++ (which
    # takes about 30 s per graph on two cores); test_compile_with_inductor covers inductor.
    monkeypatch.setattr(speed, "COMPILE_OPTIONS", {**speed.COMPILE_OPTIONS, "backend": "aot_eager"})
    formats = []
    forward = ClassificationModule.forward

    def recording_forward(self, x):
        formats.append(x.is_contiguous(memory_format=torch.channels_last))
        return forward(self, x)

    monkeypatch.setattr(ClassificationModule, "forward", recording_forward)
    overrides = [*TINY, "data.channels=3", "model.channels_last=true", "model.compile=true"]
    metrics = train(make_cfg(overrides, run_dir=tmp_path / "fast"))
    assert metrics["global_step"] == 4 and metrics["test/acc"] >= 0.0
    assert formats and not any(formats)  # batches arrive as they are; the network converts them

    saved = torch.load(tmp_path / "fast" / "checkpoints" / "last.ckpt", weights_only=True)
    plain_cfg = make_cfg(["data.channels=3"], run_dir=tmp_path / "plain")
    plain = build.build_network(plain_cfg.model, 10, 3, image_size=32)
    keys = {k.removeprefix("net.") for k in saved["state_dict"] if k.startswith("net.")}
    assert keys == set(plain.state_dict())  # no "_orig_mod." in the names
    plain.load_state_dict({k[4:]: v for k, v in saved["state_dict"].items() if k[:4] == "net."})


@pytest.mark.slow
def test_compile_with_inductor_matches_eager():
    """torch.compile's default backend generates C++ on the CPU (gcc): 5 s with a warm cache in
    /tmp/torchinductor_$USER, about 35 s cold on two cores."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.randn(2, 3, 8, 8)
    expected = net(x)
    keys = list(net.state_dict())
    speed.apply_speed_switches(net, channels_last=True, compile=True)
    torch.testing.assert_close(net(x), expected, rtol=1e-4, atol=1e-5)
    assert list(net.state_dict()) == keys
