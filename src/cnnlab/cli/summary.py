"""cnnlab-summary: the layer table of a model for one input size, with its totals."""

import os
import sys

from omegaconf import DictConfig

from cnnlab.cli.app import entry_point


def summary(cfg: DictConfig) -> str:
    """Build ``cfg.model`` for the configured sizes and return its layer table as text."""
    from cnnlab.errors import UserError
    from cnnlab.factory.build import build_network
    from cnnlab.summary.layer_table import layer_table, render

    if cfg.input_size < 1 or cfg.in_channels < 1 or cfg.num_classes < 1:
        raise UserError(
            f"input_size, in_channels and num_classes must be at least 1, got "
            f"{cfg.input_size}, {cfg.in_channels}, {cfg.num_classes}."
        )
    model = build_network(
        cfg.model, cfg.num_classes, cfg.in_channels, cfg.input_size, load_weights=False
    )
    table = layer_table(model, cfg.input_size, cfg.in_channels, cfg.get("depth"))
    title = (
        f"{type(model).__name__} on a {cfg.in_channels} x {cfg.input_size} x {cfg.input_size} "
        f"input, {cfg.num_classes} classes"
    )
    return f"{title}\n{render(table)}"


def models_table(cfg: DictConfig) -> str:
    """Every model config's parameters and mult-adds at 224 and at 32 pixels, as Markdown."""
    from cnnlab.factory.configs import config_dir
    from cnnlab.summary.model_zoo import zoo_markdown, zoo_rows

    return zoo_markdown(zoo_rows(config_dir()))


@entry_point("summary")
def main(cfg: DictConfig) -> None:
    text = models_table(cfg) if cfg.get("models_table") else summary(cfg)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `cnnlab-summary ... | head` closed the pipe: nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
