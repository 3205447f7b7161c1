"""Mask pictures: VOC colours, overlays that leave the background alone, and palette PNGs whose
stored pixel values are the class ids."""

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.viz.masks import colorize, overlay, palette_png

# The first VOC colours as the devkit's VOClabelcolormap gives them, and the ignored label's.
VOC = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 255: (224, 224, 192)}

MASK = torch.tensor([[0, 1, 2], [3, 255, 1]])


def test_colorize_paints_each_id_in_its_voc_colour():
    rgb = colorize(MASK)
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 2, 3)
    for (y, x), k in np.ndenumerate(MASK.numpy()):
        assert tuple(rgb[:, y, x].tolist()) == VOC[k]


def test_overlay_blends_objects_and_keeps_the_background():
    image = torch.full((3, 2, 3), 200, dtype=torch.uint8)
    drawn = overlay(image, MASK, alpha=0.5)
    assert drawn.dtype == torch.uint8 and drawn.shape == (3, 2, 3)
    assert drawn[:, 0, 0].tolist() == [200, 200, 200]  # background: the image as it was
    assert drawn[:, 0, 1].tolist() == [164, 100, 100]  # halfway between 200 and (128, 0, 0)
    assert drawn[:, 1, 1].tolist() == [212, 212, 196]  # ignored: halfway to VOC's cream
    assert torch.equal(overlay(image, MASK, alpha=0.0), image)
    grey = overlay(torch.zeros(1, 2, 3, dtype=torch.uint8), MASK, alpha=1.0)
    assert torch.equal(grey, colorize(MASK))


def test_palette_png_stores_class_ids_with_the_voc_palette(tmp_path):
    mask = torch.randint(0, 4, (45, 70))
    mask[0, :5] = 255
    path = palette_png(mask, tmp_path / "m.png")
    with Image.open(path) as picture:
        assert picture.mode == "P" and picture.size == (70, 45)
        assert np.array_equal(np.asarray(picture), mask.numpy())
        palette = picture.getpalette()
        colours = np.asarray(picture.convert("RGB"))
    for k in range(4):
        assert tuple(palette[3 * k : 3 * k + 3]) == VOC[k]
    assert tuple(colours[0, 0]) == VOC[255]


@pytest.mark.parametrize("bad", [torch.tensor([[0, 256]]), torch.tensor([[-1, 0]])])
def test_ids_outside_the_palette_are_refused(bad, tmp_path):
    with pytest.raises(ValueError, match="0..255"):
        colorize(bad)
    with pytest.raises(ValueError, match="0..255"):
        palette_png(bad, tmp_path / "bad.png")
