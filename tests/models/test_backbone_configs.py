"""Backbone configs (configs/model/backbone/) include their classification model config whole.

So a backbone can never drift from the model of the same name, and every classification network
that cuts into stages (``trunk()``) can be chosen as a detector's or an FCN's backbone.
"""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from cnnlab.factory import build
from cnnlab.factory.configs import config_dir, models_for_task
from cnnlab.models.trunk import trunk_of

MODELS = Path(config_dir()) / "model"
BACKBONES = sorted(p.stem for p in (MODELS / "backbone").glob("*.yaml"))
MERGED_INTO_EVERY_MODEL = ("channels_last", "compile", "crf")  # train.yaml's model node


def meta_network(model_cfg) -> torch.nn.Module:
    """The network of ``model_cfg`` at ImageNet sizes, shapes only (no memory, no init time)."""
    with torch.device("meta"):
        return build.build_network(model_cfg, 10, 3, 224, load_weights=False)


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_config_is_its_model_config_and_has_the_stages_needed(make_cfg, name):
    cfg = make_cfg(["data=shapes_detection", "model=fasterrcnn", f"model/backbone={name}"])
    model = OmegaConf.to_container(make_cfg([f"model={name}"]).model)
    for key in MERGED_INTO_EVERY_MODEL:
        del model[key]
    assert OmegaConf.to_container(cfg.model.backbone) == model
    # FCN-8s reads the last three stages, and so does the default feature pyramid
    assert len(trunk_of(meta_network(cfg.model.backbone)).stages) >= 3


@pytest.mark.slow  # builds every classification model config
def test_every_classification_model_with_stages_is_a_backbone(make_cfg):
    with_trunk = [
        name
        for name in models_for_task("classification")
        if callable(getattr(meta_network(make_cfg([f"model={name}"]).model), "trunk", None))
    ]
    assert "lenet" not in with_trunk and "resnet18" in with_trunk
    assert sorted(with_trunk) == BACKBONES
