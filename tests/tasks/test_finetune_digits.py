"""experiment=finetune_digits, one seed, one strategy: transfer from 0-4 beats scratch on 5-9."""

import pytest

from cnnlab.cli.train import train


@pytest.mark.slow  # two short training runs
def test_finetuned_beats_scratch_on_ten_images_per_class(make_cfg, tmp_path):
    pretrain = tmp_path / "pretrain"
    train(
        make_cfg(
            ["experiment=finetune_digits_pretrain", "logger=none"],
            run_dir=pretrain,
        )
    )
    weights = pretrain / "checkpoints" / "last.ckpt"
    results = {}
    for arm in ("feature_extract", "scratch"):
        overrides = [
            "experiment=finetune_digits",
            f"finetune={arm}",
            f"finetune.weights={weights}",
            "seed=0",
            "logger=none",
        ]
        results[arm] = train(make_cfg(overrides, run_dir=tmp_path / arm))["test/acc"]
    assert results["feature_extract"] >= results["scratch"] + 0.05, results
