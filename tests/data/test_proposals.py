"""Selective Search proposals: the search, its cache, and the transform that moves them."""

import pickle
import random
import sys

import pytest
import torch

from cnnlab.data import proposals as P
from cnnlab.data.detection import DetectionTransform, make_target
from cnnlab.data.proposals import (
    ProposalSettings,
    cache_key,
    cache_path,
    proposal_recall,
    proposals_for,
    selective_search,
)
from cnnlab.data.shapes import ShapesDetectionDataModule, draw_scene
from cnnlab.errors import UserError

try:
    import cv2

    HAVE_OPENCV = hasattr(cv2, "ximgproc")
except ImportError:
    HAVE_OPENCV = False
needs_opencv = pytest.mark.skipif(not HAVE_OPENCV, reason="needs the extra cnnlab[proposals]")


def shapes_picture(index: int, size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """A shapes scene with at least two objects: uint8 (3, size, size) and its boxes."""
    scene = draw_scene(0, "val", index, size=size, min_objects=2, max_objects=4)
    return torch.from_numpy(scene.image).permute(2, 0, 1).contiguous(), torch.from_numpy(
        scene.boxes
    )


@needs_opencv
def test_search_finds_the_shapes_inside_the_picture():
    found = total = 0
    for index in range(6):
        image, truth = shapes_picture(index)
        boxes = selective_search(image, "fast")
        assert boxes.dtype == torch.float32 and boxes.shape[1] == 4 and len(boxes) > 0
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 96).all()
        assert (boxes[:, 2:] - boxes[:, :2] >= 2).all()  # min_size
        assert len(torch.unique(boxes, dim=0)) == len(boxes)
        hits, count = proposal_recall(boxes, truth, 0.5)
        found, total = found + hits, total + count
    assert total >= 12 and found / total >= 0.7  # measured: 0.95 (fast), 0.98 (quality)


@needs_opencv
def test_search_is_repeatable_and_takes_grey_pictures():
    image, _ = shapes_picture(1, size=64)
    first = selective_search(image, "quality")
    assert torch.equal(first, selective_search(image, "quality"))  # the ranking is seeded
    grey = image[:1]
    boxes = selective_search(grey)
    assert torch.equal(boxes, selective_search(grey.expand(3, -1, -1)))
    assert torch.equal(boxes, selective_search(grey[0]))  # (H, W)
    big = selective_search(image, min_size=20)
    assert len(big) > 0 and (big[:, 2:] - big[:, :2] >= 20).all()
    with pytest.raises(ValueError, match="uint8"):
        selective_search(image.float())


def test_settings_are_checked():
    with pytest.raises(UserError, match="fast, quality"):
        ProposalSettings(mode="slow")
    with pytest.raises(UserError, match="eval_max"):
        ProposalSettings(eval_max=0)
    s = ProposalSettings(max=40, eval_max=60)
    assert (s.cap, s.limit(True), s.limit(False)) == (60, 40, 60)


@needs_opencv
def test_the_second_call_reads_the_cache(tmp_path):
    image, _ = shapes_picture(2)
    settings = ProposalSettings(max=30, eval_max=10, cache_dir=str(tmp_path))
    before = dict(P.counts)
    first = proposals_for(image, settings)
    path = cache_path(image, settings)
    assert path.is_file() and path.parent.parent == tmp_path
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [path.name]  # no temp file
    again = proposals_for(image, settings)
    assert P.counts["computed"] == before["computed"] + 1
    assert P.counts["cached"] == before["cached"] + 1
    assert torch.equal(first, again) and len(first) == min(30, len(selective_search(image)))
    assert torch.equal(first, selective_search(image)[:30])


@needs_opencv
def test_other_settings_or_pixels_give_another_key(tmp_path):
    image, _ = shapes_picture(3)
    base = ProposalSettings(max=30, eval_max=10)
    key = cache_key(image, base)
    others = [
        ProposalSettings(mode="quality", max=30, eval_max=10),
        ProposalSettings(max=31, eval_max=10),
        ProposalSettings(max=30, eval_max=10, min_size=3),
    ]
    assert len({key} | {cache_key(image, s) for s in others}) == 4
    changed = image.clone()
    changed[0, 0, 0] ^= 1
    assert cache_key(changed, base) != key
    assert cache_key(image[:, :, :-1], base) != key
    # what is stored does not change: the same file
    same = ProposalSettings(max=30, eval_max=5, cache_dir=str(tmp_path))
    assert cache_key(image, same) == key


@needs_opencv
def test_a_broken_cache_file_is_searched_again(tmp_path):
    image, _ = shapes_picture(4, size=64)
    settings = ProposalSettings(max=20, cache_dir=str(tmp_path))
    path = cache_path(image, settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    computed = P.counts["computed"]
    boxes = proposals_for(image, settings)
    assert P.counts["computed"] == computed + 1 and len(boxes) > 0
    assert torch.equal(proposals_for(image, settings), boxes)


@needs_opencv
def test_an_unwritable_cache_folder_is_a_user_error(tmp_path):
    image, _ = shapes_picture(4, size=64)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cache_dir"):
        proposals_for(image, ProposalSettings(cache_dir=str(blocker)))


@needs_opencv
def test_without_opencv_the_error_names_the_extra(tmp_path, monkeypatch):
    image, _ = shapes_picture(5, size=64)
    settings = ProposalSettings(max=20, cache_dir=str(tmp_path))
    cached = proposals_for(image, settings)
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now fails
    with pytest.raises(UserError, match=r'cnnlab\[proposals\]".*opencv-contrib-python-headless'):
        selective_search(image)
    assert torch.equal(proposals_for(image, settings), cached)  # the cache needs no OpenCV


def test_recall_on_hand_made_boxes():
    truth = torch.tensor([[0, 0, 10, 10], [20, 20, 40, 40], [50, 0, 60, 10.0]])
    props = torch.tensor([[0, 0, 10, 11], [20, 20, 40, 30], [0, 0, 100, 100.0]])
    # IoU: box 1 with prop 1 = 100/110; box 2 with prop 2 = 200/400 = 0.5; box 3: none
    assert proposal_recall(props, truth, 0.5) == (2, 3)
    assert proposal_recall(props, truth, 0.7) == (1, 3)
    assert proposal_recall(props, truth, 0.95) == (0, 3)
    assert proposal_recall(torch.zeros(0, 4), truth, 0.5) == (0, 3)
    assert proposal_recall(props, torch.zeros(0, 4), 0.5) == (0, 0)


@needs_opencv
def test_the_transform_moves_the_proposals_with_flip_and_rescale(tmp_path):
    image, truth = shapes_picture(6)
    settings = ProposalSettings(max=25, eval_max=8, cache_dir=str(tmp_path))
    original = proposals_for(image, settings)
    target = make_target(truth, [1] * len(truth), image_id=6)
    cached = P.counts["cached"]

    flip = DetectionTransform(None, train=True, hflip=1.0, proposals=settings)
    random.seed(3)
    out, t = flip(image, target)
    assert P.counts["cached"] == cached + 1  # read, not searched again
    height, width = out.shape[1:]
    sx, sy = width / 96, height / 96
    assert width != 96 and len(t["proposals"]) == min(25, len(original))
    kept = original[:25]
    expected = torch.stack(
        [width - kept[:, 2] * sx, kept[:, 1] * sy, width - kept[:, 0] * sx, kept[:, 3] * sy], 1
    )
    assert t["proposals"].dtype == torch.float32
    assert torch.allclose(t["proposals"], expected.clamp(min=0), atol=1e-3)
    assert (t["proposals"][:, 2] <= width).all() and (t["proposals"][:, 3] <= height).all()
    assert torch.allclose(t["boxes"][:, 0], width - truth[:, 2] * sx, atol=1e-3)

    half, t = DetectionTransform(48, train=False, proposals=settings)(image, target)
    assert half.shape == (3, 48, 48)
    assert torch.allclose(t["proposals"], original[:8] / 2)  # the eval cap
    _, plain = DetectionTransform(48, train=False)(image, target)
    assert "proposals" not in plain and torch.equal(plain["boxes"], t["boxes"])


@needs_opencv
def test_the_datamodule_caps_each_split_and_survives_pickling(tmp_path):
    dm = ShapesDetectionDataModule(
        image_size=64, num_train=3, num_val=3, num_test=1, min_objects=2, augment=False
    )
    settings = ProposalSettings(max=12, eval_max=3, cache_dir=str(tmp_path))
    dm.use_proposals(settings)  # before setup
    dm.setup()
    train_image, train_target = dm.train_set[0]
    assert train_image.shape == (3, 64, 64)  # augment off: no flip, no jitter
    pixels = torch.from_numpy(draw_scene(0, "train", 0, size=64, min_objects=2).image)
    original = proposals_for(pixels.permute(2, 0, 1).contiguous(), settings)
    assert len(original) > 3  # so that the caps differ
    assert torch.equal(train_target["proposals"], original[:12])  # the train cap, augment off
    for index in range(3):
        assert len(dm.val_set[index][1]["proposals"]) <= 3
    copied = pickle.loads(pickle.dumps(dm.val_set))  # as DataLoader workers get it
    assert torch.equal(copied[1][1]["proposals"], dm.val_set[1][1]["proposals"])
    dm.use_proposals(None)  # after setup: the splits are built again
    assert "proposals" not in dm.val_set[0][1]
