"""cnnlab-summary: the layer table of a model for one input size, with its totals."""

from omegaconf import DictConfig

from cnnlab.cli.app import entry_point


def summary(cfg: DictConfig) -> str:
    """Build ``cfg.model`` for the configured sizes and return its layer table as text."""
    from cnnlab.cli.build import instantiate
    from cnnlab.errors import UserError
    from cnnlab.report.layer_table import layer_table, render

    if cfg.input_size < 1 or cfg.in_channels < 1 or cfg.num_classes < 1:
        raise UserError(
            f"input_size, in_channels and num_classes must be at least 1, got "
            f"{cfg.input_size}, {cfg.in_channels}, {cfg.num_classes}."
        )
    model = instantiate(cfg.model, num_classes=cfg.num_classes, in_channels=cfg.in_channels)
    table = layer_table(model, cfg.input_size, cfg.in_channels, cfg.get("depth"))
    title = (
        f"{type(model).__name__} on a {cfg.in_channels} x {cfg.input_size} x {cfg.input_size} "
        f"input, {cfg.num_classes} classes"
    )
    return f"{title}\n{render(table)}"


@entry_point("summary")
def main(cfg: DictConfig) -> None:
    print(summary(cfg))


if __name__ == "__main__":
    main()
