"""A training checkpoint read safely, and its weights checked against a rebuilt module."""

from pathlib import Path

import torch
from omegaconf import DictConfig

from cnnlab.callbacks.run_config import CONFIG_KEY
from cnnlab.errors import UserError


def load_checkpoint(path: str) -> dict:
    """The checkpoint at ``path``, read with ``weights_only=True`` (a pickle that would run code
    is refused, never run); a missing, cut-short or foreign file is a UserError saying which."""
    from cnnlab.models.weight_files import safe_torch_load

    if not Path(path).is_file():
        raise UserError(
            f"No checkpoint at {path}. Give ckpt_path=RUN_DIR/checkpoints/last.ckpt "
            "(or the best-*.ckpt beside it) of a finished or interrupted cnnlab-train run."
        )
    checkpoint = safe_torch_load(Path(path), checkpoint=True)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        held = (
            "a plain state dict (weights without the training state)"
            if isinstance(checkpoint, dict)
            and checkpoint
            and all(map(torch.is_tensor, checkpoint.values()))
            else f"a {type(checkpoint).__name__} without a 'state_dict'"
        )
        raise UserError(
            f"{path} is a PyTorch file but not a training checkpoint: it holds {held}. "
            "ckpt_path= takes RUN_DIR/checkpoints/last.ckpt or best-*.ckpt of a cnnlab-train "
            "run; to start a new run from these weights, give them as finetune.weights=PATH."
        )
    return checkpoint


def epochs_trained(checkpoint: dict) -> int:
    """Epochs whose training batches the checkpoint has seen (its ``epoch`` is the 0-based index
    of the epoch it was saved in)."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(checkpoint["epoch"]) + 1


def load_module_weights(module, checkpoint: dict, cfg: DictConfig) -> None:
    """Put the checkpoint's weights into the rebuilt module, or say plainly that they do not fit."""
    check_weights_fit(module, checkpoint, cfg)
    module.load_state_dict(checkpoint["state_dict"])


def check_weights_fit(module, checkpoint: dict, cfg: DictConfig) -> None:
    """A UserError, before anything loads, when the checkpoint's tensors do not fit ``module``:
    another model (names differ), another number of classes (only the last layer's output size
    differs) or another input (any other shape)."""
    theirs = checkpoint["state_dict"]
    ours = module.state_dict()
    missing = [k for k in ours if k not in theirs]
    extra = [k for k in theirs if k not in ours]
    shapes = [k for k in ours if k in theirs and theirs[k].shape != ours[k].shape]
    if not (missing or extra or shapes):
        return
    path = cfg.ckpt_path
    stored = (checkpoint.get(CONFIG_KEY) or {}).get("model", {}).get("_target_", "?")
    if missing or extra:
        raise UserError(
            f"The checkpoint {path} holds the weights of another model ({stored}; "
            f"{len(missing)} of this model's tensors are not in it, e.g. {_first(missing)}, and "
            f"{len(extra)} of its tensors have no place here, e.g. {_first(extra)}), so it does "
            f"not fit {cfg.model._target_}. Leave model= off to use the checkpoint's own model, "
            f"or start a new run from its backbone with finetune=full finetune.weights={path}."
        )
    head = _classes_changed(shapes, theirs, ours)
    if head is not None:
        raise UserError(
            f"The checkpoint {path} was trained for {head[0]} classes, but this run's data has "
            f"{head[1]} ({cfg.data._target_}"
            + (f", data.classes={list(cfg.data.classes)}" if cfg.data.get("classes") else "")
            + "). Evaluate it on the classes it was trained on (leave data= and data.classes "
            f"off), or fine-tune it to the new ones: cnnlab-train finetune=full "
            f"finetune.weights={path} with your data= settings."
        )
    details = ", ".join(
        f"{k}: {tuple(theirs[k].shape)} in the file, {tuple(ours[k].shape)} here" for k in shapes
    )
    raise UserError(
        f"The weights in {path} do not fit the model {cfg.model._target_} as this run builds "
        f"it ({details[:400]}): the data gives it another input (channels or image size) than "
        f"the checkpoint's run. Leave data= and model= settings off to use the checkpoint's own."
    )


def _first(keys: list[str]) -> str:
    return keys[0] if keys else "none"


def _classes_changed(shapes: list[str], theirs: dict, ours: dict) -> tuple[int, int] | None:
    """(classes in the file, classes here) when every tensor that differs differs only in its
    output size, by the same two numbers (the head, and any auxiliary heads)."""
    pairs = {(theirs[k].shape[0], ours[k].shape[0]) for k in shapes}
    same_rest = all(theirs[k].shape[1:] == ours[k].shape[1:] for k in shapes)
    return next(iter(pairs)) if len(pairs) == 1 and same_rest else None
