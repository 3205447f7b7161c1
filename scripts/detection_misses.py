"""Detection speed and misses on the test pictures, for trained detectors side by side.

    python scripts/detection_misses.py RUN_A/checkpoints/best-....ckpt [RUN_B/... ...]

For each checkpoint (rebuilt with ``cnnlab.factory.restore``, on the CPU): inference
milliseconds per picture, one picture at a time as ``cnnlab-predict`` runs them (median and mean
after three warm-up pictures, torch's default threads), and which true objects of the test split
it misses. An object is found when a detection of its class scoring at least ``--score`` overlaps
it with IoU at least ``--iou``; a missed object is "wrong class" when a detection of another
class would have found it, otherwise "no box". Objects are split by size (the square root of
the box's area, in pixels of the test picture) and by whether another object's centre falls in
the same cell of an S x S grid over the picture (``--grid``; a YOLO checkpoint's own grid by
default) -- the two causes the YOLO paper names for its misses. Prints a table a checkpoint and
writes it all to ``--out`` (JSON).
"""

import argparse
import json
import statistics
import time
from collections import Counter

import torch
from torchvision.ops import box_iou

from cnnlab.factory.restore import restore

SIZES = ((0, 16), (16, 24), (24, 32), (32, 10_000))  # pixels: the square root of the box's area


def size_bucket(box: torch.Tensor) -> str:
    side = float(((box[2] - box[0]) * (box[3] - box[1])).clamp(min=0).sqrt())
    low, high = next((lo, hi) for lo, hi in SIZES if lo <= side < hi)
    return f"{low}-{high} px" if high < 10_000 else f">={low} px"


def shared_cells(boxes: torch.Tensor, height: int, width: int, grid: int) -> list[bool]:
    """Whether each box's centre shares its grid cell with another box's (letterboxed square)."""
    side = max(height, width)
    left, top = (side - width) / 2, (side - height) / 2
    cx = ((boxes[:, 0] + boxes[:, 2]) / 2 + left) / side
    cy = ((boxes[:, 1] + boxes[:, 3]) / 2 + top) / side
    cells = list(zip((cy * grid).long().clamp(0, grid - 1).tolist(),
                     (cx * grid).long().clamp(0, grid - 1).tolist(), strict=True))  # fmt: skip
    counts = Counter(cells)
    return [counts[c] > 1 for c in cells]


def analyse(ckpt: str, score: float, iou: float, grid: int | None) -> dict:
    run = restore(ckpt)
    net = run.module.net.eval()
    grid = grid or getattr(net, "grid", 8)
    run.datamodule.setup("test")
    test = run.datamodule.test_set
    times, tally = [], Counter()
    with torch.inference_mode():
        for i in range(len(test)):
            image, target = test[i]
            start = time.perf_counter()
            pred = net([image])[0]
            times.append(time.perf_counter() - start)
            keep = pred["scores"] >= score
            boxes, labels = pred["boxes"][keep], pred["labels"][keep]
            truth = target["boxes"]
            if len(truth) == 0:
                continue
            overlaps = box_iou(truth, boxes) if len(boxes) else torch.zeros(len(truth), 0)
            shared = shared_cells(truth, *image.shape[-2:], grid)
            for j, label in enumerate(target["labels"].tolist()):
                hit = overlaps[j] >= iou
                outcome = (
                    "found" if bool((hit & (labels == label)).any())
                    else "wrong class" if bool(hit.any()) else "no box"
                )  # fmt: skip
                cell = "shares its cell" if shared[j] else "alone in its cell"
                for group in ("all", size_bucket(truth[j]), cell):
                    tally[(group, outcome)] += 1
    ms = [t * 1000 for t in times[3:]]
    groups = sorted({g for g, _ in tally}, key=lambda g: (g != "all", "cell" in g, g))
    table = {}
    for g in groups:
        total = sum(tally[(g, o)] for o in ("found", "wrong class", "no box"))
        outcomes = {o: tally[(g, o)] for o in ("found", "wrong class", "no box")}
        table[g] = {"objects": total, **outcomes}
    return {
        "checkpoint": ckpt,
        "model": run.cfg.model._target_,
        "test_pictures": len(test),
        "ms_per_picture_median": round(statistics.median(ms), 2),
        "ms_per_picture_mean": round(statistics.mean(ms), 2),
        "grid": grid,
        "score": score,
        "iou": iou,
        "objects": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--score", type=float, default=0.5)
    parser.add_argument("--iou", type=float, default=0.5)
    parser.add_argument("--grid", type=int, default=None)
    parser.add_argument("--out", default="detection_misses.json")
    args = parser.parse_args()
    results = [analyse(c, args.score, args.iou, args.grid) for c in args.checkpoints]
    for r in results:
        print(f"\n{r['model']}  {r['checkpoint']}")
        median, mean = r["ms_per_picture_median"], r["ms_per_picture_mean"]
        print(f"  {median} ms a picture (median; mean {mean})")
        print(f"  {'objects':<20} {'n':>5} {'found':>7} {'wrong class':>12} {'no box':>7}")
        for group, row in r["objects"].items():
            print(f"  {group:<20} {row['objects']:>5} {row['found']:>7} {row['wrong class']:>12} "
                  f"{row['no box']:>7}")  # fmt: skip
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
