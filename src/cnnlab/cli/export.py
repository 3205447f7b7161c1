"""cnnlab-export ckpt_path=PATH format=onnx|torchscript: a checkpoint's network as a file that
runs without cnnlab's training code, checked against PyTorch, with model.json beside it."""

import logging
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.cli.app import entry_point, quiet_library_noise, typed_overrides

log = logging.getLogger("cnnlab")


def export(cfg: DictConfig) -> Path:
    """Restore the checkpoint's run, export and check its network; return the exported file."""
    from cnnlab.errors import UserError
    from cnnlab.factory.restore import restore
    from cnnlab.inference.export import (
        EXPORTABLE_TASKS,
        ExportSettings,
        describe,
        export_network,
        write_description,
    )
    from cnnlab.inference.files import class_names_of

    quiet_library_noise()
    settings = ExportSettings(**cfg.export)
    run = restore(cfg.ckpt_path, cfg, typed_overrides(cfg))
    if run.task not in EXPORTABLE_TASKS:
        raise UserError(
            f"cnnlab-export writes {' and '.join(EXPORTABLE_TASKS)} networks; this checkpoint is "
            f"a {run.task} run, which it cannot export yet."
        )
    run.datamodule.setup("test")
    images = next(iter(run.datamodule.test_dataloader()))[0]
    if run.task == "detection":  # a list of pictures: the first four, one at a time
        images = [image.float().cpu() for image in images[:4]]
    else:
        images = images.float().cpu()
    net = run.module.net.cpu().eval()
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("Exporting %s (%s) as %s into %s", cfg.ckpt_path, run.task, cfg.format, out_dir)
    path, diff = export_network(net, images, out_dir, cfg.format, settings, run.task)
    description = describe(
        run.task, class_names_of(run.datamodule), run.datamodule, images, cfg.ckpt_path,
        cfg.format, settings, diff,
    )  # fmt: skip
    write_description(description, out_dir)
    log.info("Wrote %s and %s", path, out_dir / "model.json")
    return path


@entry_point("export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
