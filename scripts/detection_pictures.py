"""Pictures for docs/detection.md: the detection lineage on one test picture of the shapes.

    python scripts/detection_pictures.py --out docs/images [--rcnn CKPT] [--fast-rcnn CKPT]
        [--fasterrcnn CKPT] [--yolo CKPT] [--index 20]

Writes detection_{proposals,rcnn_crops,fast_rcnn_rois,anchors,yolo_grid}.png and, given
checkpoints, detection_outputs.png (each detector's boxes scoring >= 0.5), enlarged (nearest) so
that thin lines read. Without its checkpoint a picture takes the experiments' settings (and a
random ResNet-18 for Fast R-CNN's feature map).
"""

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image, ImageDraw
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import box_iou, roi_align
from torchvision.utils import draw_bounding_boxes

from cnnlab.data.proposals import ProposalSettings, proposal_recall, proposals_for
from cnnlab.data.shapes import SHAPE_NAMES, draw_scene
from cnnlab.factory.restore import restore
from cnnlab.models.letterbox import letterbox, letterbox_boxes
from cnnlab.models.rcnn import trunk_at_stride
from cnnlab.models.resnet import resnet18
from cnnlab.models.trunk import trunk_of
from cnnlab.viz.boxes import PRED_COLOR, TRUE_COLOR, label_text
from cnnlab.viz.images import caption, image_grid, save_png

SCALE = 3  # every picture pixel drawn 3 x 3
OBJECT, BACKGROUND = (40, 220, 40), (170, 170, 170)
SPOTS = ["orange", "cyan", "magenta", "yellow"]  # one colour per anchor position / YOLO box
FASTER_YAML = Path(__file__).resolve().parents[1] / "configs/model/fasterrcnn.yaml"
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])


def big(image: torch.Tensor, scale: int = SCALE) -> torch.Tensor:
    return image.repeat_interleave(scale, 1).repeat_interleave(scale, 2)


def titled(image: torch.Tensor, text: str) -> torch.Tensor:
    """The uint8 picture (3, H, W) under a black strip with ``text`` (viz.images.caption)."""
    padded = F.pad(image, (0, 0, 16, 0)).permute(1, 2, 0).contiguous().numpy()
    return torch.from_numpy(np.array(caption(Image.fromarray(padded), text))).permute(2, 0, 1)


def boxes_on(image, boxes, colors, width=1, labels=None, scale=SCALE, shift=0.0):
    """Boxes in picture pixels drawn on the enlarged picture."""
    return draw_bounding_boxes(image, (boxes + shift) * scale, labels, colors, width=width,
                               fill_labels=True, label_colors="black")  # fmt: skip


def dots(image: torch.Tensor, points, colour=(255, 255, 255), r: int = 2) -> torch.Tensor:
    image, colour = image.clone(), torch.tensor(colour, dtype=image.dtype)[:, None, None]
    for x, y in ((int(x), int(y)) for x, y in points):
        image[:, max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] = colour
    return image


def pick_regions(proposals, truth, count: int = 16):
    """Half the regions on objects (IoU >= 0.5, the objects in turn), the rest background
    spread over the ranking: the regions and their best IoU with a true box."""
    best, owner = box_iou(proposals, truth).max(1) if len(truth) else (proposals[:, 0] * 0, None)
    turn, taken = {}, Counter()  # turn: how many earlier regions are on the same object
    for i in (best >= 0.5).nonzero().flatten().tolist():
        turn[i], taken[int(owner[i])] = taken[int(owner[i])], taken[int(owner[i])] + 1
    pos = sorted(turn, key=lambda i: (turn[i], i))[: count // 2]
    neg = (best < 0.5).nonzero().flatten()
    spread = torch.linspace(0, len(neg) - 1, count - len(pos)).round().long().unique()
    chosen = torch.tensor(pos + neg[spread].tolist(), dtype=torch.long)
    return proposals[chosen], best[chosen]


def proposals_picture(picture, proposals, truth):
    found, total = proposal_recall(proposals, truth, 0.5)
    shown = boxes_on(boxes_on(picture, proposals[:60], "orange"), truth, TRUE_COLOR, width=2)
    text = f"Selective Search (fast): {len(proposals)} proposals, first 60 drawn; "
    return titled(shown, text + f"recall@0.5 = {found}/{total}")


def crops_picture(picture, image, regions, ious, net):
    """Each region warped to the square of R-CNN's crop_size, framed by its label."""
    size = 32 if net is None else net.crop_size  # 32: the lineage's R-CNN
    crops = roi_align(image[None], [regions], size, 1.0, 2, aligned=True)
    colours = [OBJECT if iou >= 0.5 else BACKGROUND for iou in ious]
    side, tiles = size * max(1, 96 // size) + 6, []
    for k, (crop, iou, colour) in enumerate(zip(crops, ious, colours, strict=True)):
        tile = torch.tensor(colour, dtype=torch.uint8)[:, None, None].repeat(1, side, side)
        tile[:, 3:-3, 3:-3] = big((crop.clamp(0, 1) * 255).round().byte(), max(1, 96 // size))
        pil = Image.fromarray(tile.permute(1, 2, 0).contiguous().numpy())
        ImageDraw.Draw(pil).rectangle((3, 3, 62, 15), fill="black")
        ImageDraw.Draw(pil).text((5, 4), f"{k} IoU {iou:.2f}", fill="white")
        tiles.append(torch.from_numpy(np.array(pil)).permute(2, 0, 1))
    left = boxes_on(picture, regions, colours, 2, [str(k) for k in range(len(regions))])
    left = titled(left, f"{len(regions)} proposals: green IoU >= 0.5 with an object, grey not")
    text = f"R-CNN: each warped to {size} x {size}, its own pass through the network"
    return image_grid([left, titled(image_grid(tiles, columns=4), text)], columns=2)


def fast_rcnn_picture(picture, image, regions, ious, net):
    """One map from the trunk, the regions projected onto it in cells (rounded, as RoI pool)."""
    if net is None:
        torch.manual_seed(0)
        body = trunk_at_stride(trunk_of(resnet18(num_classes=3)), 16).body
        x, where = ((image - MEAN[:, None, None]) / STD[:, None, None])[None], "random ResNet-18"
    else:
        body, x, where = net.body, net.prepare([image])[0], "trained trunk"
    fmap = body.eval()(x)[0]
    stride, side = x.shape[-1] // fmap.shape[-1], fmap.shape[-1]
    level = fmap.mean(0)
    level = (level - level.min()) / (level.max() - level.min()).clamp_min(1e-12)
    c0, c1, c2 = torch.tensor([[20.0, 20, 90], [30, 140, 150], [250, 230, 60]])[..., None, None]
    rgb = torch.where(level < 0.5, torch.lerp(c0, c1, 2 * level), torch.lerp(c1, c2, 2 * level - 1))
    shown, cell = big(rgb.round().byte(), picture.shape[-1] // side), picture.shape[-1] // side
    for i in range(1, side):  # the cells' edges
        shown[:, i * cell, :] = shown[:, :, i * cell] = 0
    cells = torch.floor(regions / stride + 0.5)  # rounded to cells, the last ones included
    cells[:, 2:] += 1
    colours = [OBJECT if iou >= 0.5 else BACKGROUND for iou in ious]
    shown = boxes_on(shown, cells.clamp(0, side), colours, 2, scale=cell)
    left = titled(boxes_on(picture, regions, colours, 2), f"the picture, {len(regions)} proposals")
    text = f"{where}, one pass: {fmap.shape[0]} x {side} x {side} map (mean), RoIs / {stride}"
    return image_grid([left, titled(shown, text)], columns=2)


def anchors_picture(image, truth, net):
    """A panel per feature map: its anchor centres, its anchors at those of fitting objects."""
    if net is None:
        cfg = OmegaConf.load(FASTER_YAML)
        sizes = [tuple(s) for s in cfg.anchor_sizes]
        ratios = [tuple(cfg.aspect_ratios)] * len(sizes)
        strides = [8 * 2**i for i in range(len(sizes))]  # ResNet-18, 3 FPN stages + pool
    else:
        sizes, ratios = net.rpn.anchor_generator.sizes, net.rpn.anchor_generator.aspect_ratios
        maps = net.backbone(torch.zeros(1, 3, *image.shape[-2:]))
        strides = [image.shape[-1] // m.shape[-1] for m in maps.values()]
    margin, scale, side = 48, 2, image.shape[-1]
    canvas = big(F.pad((image * 255).round().byte(), (margin,) * 4, value=90), scale)
    centres = (truth[:, :2] + truth[:, 2:]) / 2
    widths = (truth[:, 2:] - truth[:, :2]).prod(1).sqrt()
    panels = []
    for size, ratio, stride in zip(sizes, ratios, strides, strict=True):
        base = AnchorGenerator.generate_anchors(None, list(size), list(ratio))  # about 0, 0
        last = (-(-side // stride) - 1) * stride  # torchvision: a centre every stride pixels
        grid = torch.arange(0, last + 1, stride).tolist()
        spots: list[torch.Tensor] = []
        for i in (widths - max(size)).abs().argsort().tolist():
            spot = (centres[i] / stride).round().clamp(max=last // stride) * stride
            if len(spots) < 2 and all((spot - o).abs().max() >= max(size) for o in spots):
                spots.append(spot)
        at = [((x + margin) * scale, (y + margin) * scale) for y in grid for x in grid]
        shown = boxes_on(dots(canvas, at, r=1), truth, TRUE_COLOR, 1, scale=scale, shift=margin)
        for k, (x, y) in enumerate(spot.tolist() for spot in spots):
            boxes = base + torch.tensor([x, y, x, y])
            shown = boxes_on(shown, boxes, SPOTS[k], 2, scale=scale, shift=margin)
            shown = dots(shown, [((x + margin) * scale, (y + margin) * scale)], (255, 0, 0), 3)
        text = f"stride {stride}: anchors of {', '.join(str(s) for s in size)} px x ratios (h/w) "
        panels.append(titled(shown, text + ", ".join(f"{r:g}" for r in ratio)))
    return image_grid(panels, columns=2)


def yolo_picture(image, truth, net):
    """The letterboxed square, its S x S cells (those holding a centre bright), and (with a
    trained net) those cells' B boxes with their confidence."""
    size, grid = (128, 8) if net is None else (net.image_size, net.grid)
    (canvas, place), scale = letterbox(image, size), max(1, round(384 / size))
    shown, boxes = big(canvas * 255, scale), letterbox_boxes(truth, place)
    cells = (((boxes[:, :2] + boxes[:, 2:]) / 2) / size * grid).long().clamp(0, grid - 1)
    lit = torch.full((grid, grid), 0.45)  # cells without an object's centre are dimmed
    lit[cells[:, 1], cells[:, 0]] = 1.0
    lit = F.interpolate(lit[None, None], size=shown.shape[-2:], mode="nearest")[0]
    shown, cell = (shown * lit).round().byte(), size * scale / grid
    for i in range(1, grid):
        shown[:, round(i * cell), :] = shown[:, :, round(i * cell)] = 255
    centres = ((boxes[:, :2] + boxes[:, 2:]) / 2 * scale).tolist()
    shown = dots(boxes_on(shown, boxes, TRUE_COLOR, 1, scale=scale), centres, (0, 160, 0), 3)
    text = f"YOLO {grid} x {grid}: bright cells hold an object's centre"
    if net is not None:
        pred = net.split(net.outputs(net.prepare([image])[0]))
        corners, conf = pred.corners()[0] * size, pred.confidence[0]
        for col, row in cells.unique(dim=0).tolist():
            for b in range(net.boxes_per_cell):
                label, colour = [f"{float(conf[row, col, b]):.2f}"], SPOTS[b % len(SPOTS)]
                shown = boxes_on(shown, corners[row, col, b][None], colour, 2, label, scale)
        text += f"; their {net.boxes_per_cell} boxes, confidence"
    return titled(shown, text)


def outputs_picture(picture, image, nets):
    panels = []
    for name, net in nets.items():
        if hasattr(net, "proposal_settings"):  # R-CNN, Fast R-CNN: their own Selective Search,
            net.proposal_settings["cache_dir"] = None  # here without the run's cache folder
        found = net([image])[0]
        keep = found["scores"] >= 0.5
        text = [label_text(int(n), SHAPE_NAMES) for n in found["labels"][keep]]
        text = [f"{t} {v:.2f}" for t, v in zip(text, found["scores"][keep].tolist(), strict=True)]
        shown = boxes_on(picture, found["boxes"][keep], PRED_COLOR, 2, text)
        panels.append(titled(shown, f"{name}: {int(keep.sum())} detections, score >= 0.5"))
    return image_grid(panels, columns=len(panels))


def save(folder: Path, name: str, image: torch.Tensor) -> None:
    save_png(image, folder / f"detection_{name}.png")
    print(f"wrote {folder / f'detection_{name}.png'}")


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--index", type=int, default=20, help="test picture of shapes_detection")
    for flag in ("rcnn", "fast-rcnn", "fasterrcnn", "yolo"):
        parser.add_argument(f"--{flag}", metavar="CKPT", help="a trained run's checkpoint")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = {"rcnn": "R-CNN", "fast_rcnn": "Fast R-CNN", "fasterrcnn": "Faster R-CNN",
             "yolo": "YOLO v1"}  # fmt: skip
    nets = {}
    for key, name in names.items():
        if getattr(args, key) is None:
            print(f"no --{key.replace('_', '-')} checkpoint: {name} left out of the outputs")
        else:
            nets[name] = restore(getattr(args, key)).module.net.eval()
    scene = draw_scene(seed=0, split="test", index=args.index, size=128)
    pixels = torch.from_numpy(scene.image).permute(2, 0, 1).contiguous()
    image, truth, picture = pixels.float() / 255, torch.from_numpy(scene.boxes), big(pixels)
    proposals = proposals_for(pixels, ProposalSettings(mode="fast"))
    regions, ious = pick_regions(proposals, truth)
    save(args.out, "proposals", proposals_picture(picture, proposals, truth))
    save(args.out, "rcnn_crops", crops_picture(picture, image, regions, ious, nets.get("R-CNN")))
    rois = fast_rcnn_picture(picture, image, regions, ious, nets.get("Fast R-CNN"))
    save(args.out, "fast_rcnn_rois", rois)
    save(args.out, "anchors", anchors_picture(image, truth, nets.get("Faster R-CNN")))
    save(args.out, "yolo_grid", yolo_picture(image, truth, nets.get("YOLO v1")))
    if nets:
        save(args.out, "outputs", outputs_picture(picture, image, nets))
    else:
        print("no checkpoints: detection_outputs.png not written")


if __name__ == "__main__":
    main()
