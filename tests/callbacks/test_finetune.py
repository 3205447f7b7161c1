"""Fine-tuning strategies: what trains, what changes after a step, the learning rates, errors."""

from types import SimpleNamespace

import pytest
import torch

from cnnlab.callbacks.finetune import Finetune
from cnnlab.cli.train import train
from cnnlab.errors import UserError
from cnnlab.models import get_model
from cnnlab.models.parts import backbone_stages, choose_head, head_names, split_parameters
from cnnlab.models.weights import load_pretrained
from cnnlab.optim.param_groups import finetune_groups

FAST = ["data.samples_per_class=4", "data.batch_size=8", "logger=none", "callbacks=none"]


def apply(callback: Finetune, net, epoch: int) -> None:
    trainer, module = SimpleNamespace(current_epoch=epoch), SimpleNamespace(net=net)
    hook = callback.on_fit_start if callback.frozen is None else callback.on_train_epoch_start
    hook(trainer, module)


def trainable(params) -> set[bool]:
    return {p.requires_grad for p in params}


@pytest.mark.parametrize(
    ("strategy", "frozen_at"),
    [("feature_extract", [0, 1, 2, 5]), ("full", []), ("gradual", [0, 1])],
)
def test_which_parameters_train_in_each_epoch(strategy, frozen_at):
    net = get_model("resnet20", num_classes=5, in_channels=1)
    callback = Finetune(strategy, freeze_epochs=2, train_bn=True)
    backbone, head = split_parameters(net)
    for epoch in (0, 1, 2, 5):
        apply(callback, net, epoch)
        assert trainable(head) == {True}
        assert trainable(backbone) == {epoch not in frozen_at}, (strategy, epoch)


def test_frozen_batch_norm_stays_in_eval_mode_and_train_bn_false_keeps_it_there():
    net = get_model("resnet20", num_classes=5, in_channels=1)
    callback = Finetune("gradual", freeze_epochs=1, train_bn=False)
    apply(callback, net, 0)
    net.train()
    callback.on_train_batch_start(None, None, None, 0)
    assert not net.bn1.training and net.fc.training
    apply(callback, net, 1)  # unfrozen, but train_bn=False: batch norm keeps its statistics
    net.train()
    callback.on_train_batch_start(None, None, None, 0)
    assert not net.bn1.training and not net.bn1.weight.requires_grad
    assert net.conv1.weight.requires_grad


def test_backbone_learning_rate_is_scaled():
    net = get_model("resnet20", num_classes=5, in_channels=1)
    groups = finetune_groups(net, backbone_lr_scale=0.1, head=split_parameters(net)[1])
    opt = torch.optim.SGD(groups, lr=0.5)
    for g in opt.param_groups:
        g["lr"] *= g["lr_scale"]
    head = {id(p) for p in net.fc.parameters()}
    for g in opt.param_groups:
        in_head = {id(p) in head for p in g["params"]}
        assert len(in_head) == 1
        assert g["lr"] == pytest.approx(0.5 if in_head == {True} else 0.05)
    assert opt.param_groups[0]["lr"] == 0.5  # the logged rate is the head's
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


def test_unknown_strategy_is_refused():
    with pytest.raises(UserError, match="feature_extract, full, gradual"):
        Finetune("half")


@pytest.fixture
def pretrained(tmp_path):
    """A resnet20 state dict for digits (10 classes), saved as a plain .pt file."""
    torch.manual_seed(0)
    net = get_model("resnet20", num_classes=10, in_channels=1)
    path = tmp_path / "pretrained.pt"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def final_state(run_dir) -> dict:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()}, ckpt


@pytest.mark.parametrize("strategy", ["feature_extract", "full", "gradual"])
def test_strategies_end_to_end(make_cfg, tmp_path, pretrained, strategy):
    path, before = pretrained
    run = tmp_path / strategy
    overrides = [
        "model=resnet20",
        f"finetune={strategy}",
        f"finetune.weights={path}",
        "finetune.freeze_epochs=1",
        "trainer.max_epochs=2",
        "scheduler=none",
        "data.classes=[5,6,7]",
        *FAST,
        "+callbacks.last._target_=lightning.pytorch.callbacks.ModelCheckpoint",
        f"+callbacks.last.dirpath={run}/checkpoints",
        "+callbacks.last.filename=last",
    ]
    train(make_cfg(overrides, run_dir=run))
    after, ckpt = final_state(run)
    assert after["fc.weight"].shape == (3, 64)  # a new head for the 3 classes
    conv_same = torch.equal(after["conv1.weight"], before["conv1.weight"])
    stats_same = torch.equal(after["bn1.running_mean"], before["bn1.running_mean"])
    if strategy == "feature_extract":
        assert conv_same and stats_same  # frozen, and batch norm in eval mode
    else:
        assert not conv_same and not stats_same
    lrs = sorted({g["lr"] for g in ckpt["optimizer_states"][0]["param_groups"]})
    lr = 2e-3  # optimizer=adam's default
    assert lrs == pytest.approx([0.0, lr] if strategy == "feature_extract" else [lr * 0.1, lr])


@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_model_weights_from_the_torch_hub_cache(make_cfg, tmp_path, monkeypatch):
    """`model.weights=IMAGENET1K_V1` reads torchvision's file from the cache, offline."""
    import torchvision

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    reference = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(reference, hub / "checkpoints" / url.rsplit("/", 1)[-1])
    cfg = make_cfg(
        ["model=resnet18", "model.weights=IMAGENET1K_V1", "finetune=feature_extract"]
        + ["debug=fast_dev_run", "data.channels=3", "data.batch_size=4"]
    )
    metrics = train(cfg)
    assert metrics["global_step"] == 1


def test_finetune_without_weights_and_with_two_sources_are_refused(make_cfg, pretrained):
    path, _ = pretrained
    with pytest.raises(UserError, match="model.weights=IMAGENET1K_V1 .* finetune.weights=PATH"):
        train(make_cfg(["model=resnet20", "finetune=full", "debug=fast_dev_run"]))
    with pytest.raises(UserError, match="Two sources"):
        train(
            make_cfg(
                ["model=resnet18", "model.weights=DEFAULT", "finetune=full"]
                + [f"finetune.weights={path}", "debug=fast_dev_run"]
            )
        )


def test_scratch_ignores_the_weights(make_cfg, pretrained, caplog):
    path, _ = pretrained
    cfg = make_cfg(
        ["model=resnet20", "finetune=scratch", f"finetune.weights={path}", "debug=fast_dev_run"]
    )
    with caplog.at_level("INFO", logger="cnnlab"):
        train(cfg)
    assert "finetune=scratch: random initialisation" in caplog.text


def small_alexnet(num_classes: int = 10):
    torch.manual_seed(0)
    return get_model("alexnet", num_classes=num_classes, in_channels=1, small_input=True)


def test_head_linear_is_the_output_layer_and_classifier_the_whole_classifier():
    net = small_alexnet()
    choose_head(net, "linear")
    assert head_names(net) == ("classifier.6",)
    _, head = split_parameters(net)
    assert sum(p.numel() for p in head) == 1024 * 10 + 10
    choose_head(net, "classifier")
    assert head_names(net) == ("classifier",)
    assert sum(p.numel() for p in split_parameters(net)[1]) == sum(
        p.numel() for p in net.classifier.parameters()
    )
    resnet = get_model("resnet20")
    choose_head(resnet, "linear")  # one linear layer already: the same head
    assert head_names(resnet) == ("fc",)
    with pytest.raises(UserError, match="linear .* classifier"):
        choose_head(net, "mlp")


def test_head_linear_loads_the_pretrained_hidden_layers_and_freezes_them(tmp_path):
    """The lecture's feature extraction: fc6 and fc7 come from the file and stay fixed; only
    the new output layer trains (head=classifier would re-initialise and train all three)."""
    source = small_alexnet()
    path = tmp_path / "alexnet.pt"
    torch.save(source.state_dict(), path)
    counts = {}
    for head in ("linear", "classifier"):
        net = small_alexnet(num_classes=3)
        torch.manual_seed(1)
        net.classifier.apply(
            lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else 0
        )
        choose_head(net, head)
        load_pretrained(net, path=path, new_head=True)
        fc6_loaded = torch.equal(net.classifier[1].weight, source.classifier[1].weight)
        assert fc6_loaded == (head == "linear")
        apply(Finetune("feature_extract"), net, 0)
        counts[head] = sum(p.numel() for p in net.parameters() if p.requires_grad)
        assert net.classifier[6].weight.requires_grad
        assert net.classifier[1].weight.requires_grad == (head == "classifier")
    assert counts == {
        "linear": 1024 * 3 + 3,
        "classifier": sum(p.numel() for p in small_alexnet(3).classifier.parameters()),
    }


def test_trainable_layers_trains_only_the_deepest_stages():
    net = get_model("resnet20", num_classes=5, in_channels=1)
    callback = Finetune("gradual", freeze_epochs=1, trainable_layers=1)
    apply(callback, net, 0)  # the head alone
    assert trainable(net.layer3.parameters()) == {False} and trainable(net.fc.parameters()) == {
        True
    }
    apply(callback, net, 1)  # then the last stage too, the rest stays frozen
    assert trainable(net.layer3.parameters()) == {True}
    assert trainable(net.layer2.parameters()) == trainable(net.conv1.parameters()) == {False}
    net.train()
    callback.on_train_batch_start(None, None, None, 0)
    assert not net.bn1.training and not net.layer2[0].bn1.training and net.layer3[0].bn1.training


def test_trainable_layers_counts_stages_per_family():
    alexnet = small_alexnet()
    choose_head(alexnet, "classifier")
    assert [s.name for s in backbone_stages(alexnet)] == [
        "features.0-features.2", "features.3-features.5", "features.6-features.7",
        "features.8-features.9", "features.10-features.12",
    ]  # fmt: skip
    choose_head(alexnet, "linear")  # the kept fc6 and fc7 are one more, the deepest, stage
    assert backbone_stages(alexnet)[-1].name == "classifier.1-classifier.4"
    apply(Finetune("full", trainable_layers=2), alexnet, 0)
    assert alexnet.features[10].weight.requires_grad and alexnet.classifier[1].weight.requires_grad
    assert not alexnet.features[8].weight.requires_grad
    vgg = get_model("vgg11", num_classes=10, in_channels=1, small_input=True)
    assert len(backbone_stages(vgg)) == 5  # its five blocks
    assert [s.name for s in backbone_stages(get_model("resnet18"))][1:] == [
        "layer1", "layer2", "layer3", "layer4",
    ]  # fmt: skip


def test_trainable_layers_beyond_the_stages_or_with_feature_extract_is_refused():
    net = get_model("resnet20", num_classes=5, in_channels=1)
    with pytest.raises(UserError, match="has 4 stages .*conv1-bn1, layer1, layer2, layer3"):
        apply(Finetune("full", trainable_layers=5), net, 0)
    with pytest.raises(UserError, match="finetune=full .*trainable_layers=N"):
        Finetune("feature_extract", trainable_layers=2)


@pytest.mark.parametrize(
    ("head", "trainable_count"), [("linear", 84 * 3 + 3), ("classifier", 58539)]
)
def test_feature_extract_prints_the_trainable_counts_of_the_head(
    make_cfg, tmp_path, caplog, head, trainable_count
):
    torch.manual_seed(0)
    path = tmp_path / "lenet.pt"
    torch.save(get_model("lenet").state_dict(), path)
    cfg = make_cfg(
        ["model=lenet", "finetune=feature_extract", f"finetune.weights={path}"]
        + [f"finetune.head={head}", "data.classes=[5,6,7]", "debug=fast_dev_run"]
    )
    with caplog.at_level("INFO", logger="cnnlab"):
        train(cfg)
    assert f"Fine-tuning (feature_extract): {trainable_count:,} parameters trainable" in caplog.text
