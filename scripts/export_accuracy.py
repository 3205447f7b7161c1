"""Test accuracy of an exported classifier against its checkpoint, on the checkpoint's test split.

    python scripts/export_accuracy.py --ckpt RUN/checkpoints/last.ckpt --model EXPORT/model.onnx

The checkpoint's run is restored for its test data; each test batch goes through the PyTorch
network and through the exported file (onnxruntime or TorchScript, as cnnlab-predict runs it).
Prints both accuracies, the number of test images whose label differs and the largest
difference between the two networks' logits.
"""

import argparse
from pathlib import Path

import torch

from cnnlab.factory.restore import restore
from cnnlab.inference.exported import ExportedNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--model", required=True, help="model.onnx or model.pt of cnnlab-export")
    args = parser.parse_args()
    run = restore(args.ckpt)
    net = run.module.net.cpu().eval()
    exported = ExportedNet(Path(args.model))
    run.datamodule.setup("test")
    right = {"pytorch": 0, "exported": 0}
    differ, largest, total = 0, 0.0, 0
    for images, labels in run.datamodule.test_dataloader():
        with torch.no_grad():
            ours = net(images)
        theirs = exported(images)
        largest = max(largest, float((ours - theirs).abs().max()))
        right["pytorch"] += int((ours.argmax(1) == labels).sum())
        right["exported"] += int((theirs.argmax(1) == labels).sum())
        differ += int((ours.argmax(1) != theirs.argmax(1)).sum())
        total += len(labels)
    print(
        f"{total} test images: test/acc {right['pytorch'] / total:.4f} (checkpoint, PyTorch), "
        f"{right['exported'] / total:.4f} ({args.model}); labels differ on {differ}; largest "
        f"logit difference {largest:.3g}"
    )


if __name__ == "__main__":
    main()
