"""recipe=plain|modern|fast, each ingredient as its own override, the CIFAR-10 experiments on
FakeData of CIFAR's shape, and the learning-rate and batch-size finders: real (tiny) runs."""

import pytest
import torch
from torchvision.transforms import v2

from cnnlab.cli.train import train
from cnnlab.data.augment import POLICIES
from cnnlab.data.transforms import classification_transforms
from cnnlab.errors import UserError

TINY = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "trainer.enable_model_summary=false",
    "callbacks.tensorboard_images=null",
    "logger=csv",
]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("channels", [1, 3])
def test_each_policy_keeps_dtype_range_and_shape(policy, channels):
    torch.manual_seed(0)
    common = dict(image_size=32, native_size=32, mean=[0.0] * channels, std=[1.0] * channels)
    pipeline = classification_transforms(train=True, shift=4, hflip=True, policy=policy,
                                          **common)  # fmt: skip
    image = torch.randint(0, 256, (channels, 32, 32), dtype=torch.uint8)
    for _ in range(20):  # the random operations differ each time
        out = pipeline(image)
        assert out.dtype == torch.float32 and out.shape == (channels, 32, 32)
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0  # mean 0, std 1: [0, 1]
    plain = classification_transforms(train=False, **common)
    assert not any(isinstance(t, v2.RandomCrop) for t in plain.transforms)


def test_random_erasing_comes_after_normalisation():
    pipeline = classification_transforms(train=True, image_size=32, native_size=32, mean=[0.5],
                                          std=[0.5], random_erasing=0.1)  # fmt: skip
    kinds = [type(t) for t in pipeline.transforms]
    assert kinds.index(v2.RandomErasing) == kinds.index(v2.Normalize) + 1


@pytest.mark.slow  # a short training run: ~1 s
def test_modern_recipe_trains_with_its_ingredients(make_cfg, tmp_path):
    cfg = make_cfg([*TINY, "recipe=modern", "model=resnet20"])
    assert cfg.module.label_smoothing == 0.1 and cfg.scheduler.warmup_epochs == 1
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "current_model_state" in ckpt  # EMA: the average in state_dict, the trained beside it


def test_one_ingredient_alone(make_cfg):
    metrics = train(make_cfg([*TINY, "recipe.cutmix_alpha=1.0", "recipe.tta=flip"]))
    assert 0.0 <= metrics["test/acc"] <= 1.0


def test_batched_data_refuses_per_image_augmentation(make_cfg):
    with pytest.raises(UserError, match="data.in_memory=true .*recipe.augment=autoaugment"):
        train(make_cfg([*TINY, "data.in_memory=true", "recipe.augment=autoaugment"]))


def test_detection_refuses_classification_only_ingredients(make_cfg):
    with pytest.raises(UserError, match="recipe.mixup_alpha=0.2 applies to classification"):
        train(make_cfg([*TINY, "data=shapes_detection", "model=fasterrcnn",
                        "recipe.mixup_alpha=0.2"]))  # fmt: skip


@pytest.mark.parametrize("experiment", ["cifar10_fast", "cifar10_resnet18"])
@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_cifar10_experiments_run_a_batch_on_cifar_shaped_fake_data(make_cfg, experiment):
    fake = ["data=fake", "data.image_size=32", "data.train_size=64", "data.val_size=32",
            "data.test_size=32", "data.batch_size=32"]  # fmt: skip
    cfg = make_cfg([f"experiment={experiment}", *fake, *TINY, "+trainer.max_steps=1"])
    assert cfg.model._target_.endswith(("resnet20", "resnet18"))
    metrics = train(cfg)
    assert metrics["global_step"] == 1


@pytest.mark.slow  # about 1 s: the fast tier stays under its 2 minutes
def test_lr_finder_saves_its_curve_and_trains_with_the_suggestion(make_cfg, tmp_path):
    whole_epoch = [o for o in TINY if "limit_train" not in o]  # the finders need their steps
    cfg = make_cfg([*whole_epoch, "tune.lr_find=true", "tune.num_training=30"])
    metrics = train(cfg)
    assert (tmp_path / "run" / "lr_find.png").stat().st_size > 1000
    suggested = metrics["tune/lr"]
    assert suggested != pytest.approx(cfg.optimizer.lr)  # the finder's rate, not the config's
    # ... and it is the rate the optimizer trained with: the base rate its schedule started from
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    for group in saved["optimizer_states"][0]["param_groups"]:
        assert group["initial_lr"] == pytest.approx(suggested)


@pytest.mark.slow  # about 1 s or more: the fast tier stays under 2 minutes
def test_batch_size_finder_doubles_while_it_fits(make_cfg):
    whole_epoch = [o for o in TINY if "limit_train" not in o]
    metrics = train(make_cfg([*whole_epoch, "tune.batch_size_find=true", "tune.max_trials=2"]))
    assert metrics["tune/batch_size"] == 128  # two sizes tried: 64, then 128


def test_color_jitter_changes_the_image_only():
    """Detection and segmentation take recipe.color_jitter: colours change, boxes and masks
    stay, and values stay in range."""
    from cnnlab.data.detection import DetectionTransform
    from cnnlab.data.transforms import SegmentationTransform

    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8)
    boxes = torch.tensor([[5.0, 6.0, 30.0, 20.0]])
    jitter = DetectionTransform(None, train=True, hflip=0.0, color_jitter=0.4)
    assert DetectionTransform(None, train=False, color_jitter=0.4).colour is None  # train only
    out, target = jitter(image, {"boxes": boxes, "labels": torch.tensor([1])})
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert target["boxes"].shape == (1, 4)  # moved by the scale jitter alone
    floats = image.float() / 255
    assert not torch.allclose(jitter.colour(floats), floats)
    mask = torch.randint(0, 3, (40, 60))
    seg_image, seg_mask = SegmentationTransform(None, train=True, hflip=0.0, color_jitter=0.4)(
        image, mask
    )
    assert torch.equal(seg_mask, mask) and seg_image.shape == (3, 40, 60)


@pytest.mark.slow  # a short run of each task
def test_color_jitter_reaches_every_task(make_cfg):
    metrics = train(make_cfg([*TINY, "recipe.color_jitter=0.3", "recipe.ema_decay=0.99",
                              "data=shapes_segmentation", "model=fcn32s",
                              "model/backbone=resnet18"]))  # fmt: skip
    assert 0.0 <= metrics["test/miou"] <= 1.0
