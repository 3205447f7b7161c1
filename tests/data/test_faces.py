"""Faces found and aligned by the eyes with OpenCV's Haar cascades (cnnlab.data.faces), on the
photo scikit-image ships (the astronaut Eileen Collins) and on pictures without a face."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from cnnlab.data.faces import FaceSettings, aligned_crop, find_faces
from cnnlab.errors import UserError


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage.data.astronaut())


def test_the_astronauts_face_and_eyes_are_found(astronaut):
    (face,) = find_faces(astronaut)
    x1, y1, x2, y2 = face.box
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 190  # her face, upper left of the centre
    (lx, ly), (rx, ry) = face.eyes
    assert x1 < lx < (x1 + x2) / 2 < rx < x2 and y1 < min(ly, ry) < max(ly, ry) < (y1 + y2) / 2
    assert abs(face.angle) < 6  # her head is nearly upright


@pytest.mark.parametrize("turn", [10, -10])
def test_a_turned_photo_is_aligned_back_to_level_eyes(astronaut, turn):
    upright = find_faces(astronaut)[0].angle
    turned = astronaut.rotate(turn, resample=Image.Resampling.BILINEAR)  # counter-clockwise
    (face,) = find_faces(turned)
    assert face.angle == pytest.approx(upright - turn, abs=3)  # the tilt measured
    crop = aligned_crop(turned, face, margin=0.2)
    assert crop.width == crop.height == pytest.approx(1.4 * (face.box[2] - face.box[0]), abs=1)
    (again,) = find_faces(crop, FaceSettings(min_size=20))
    assert abs(again.angle) < 3  # the eyes of the aligned crop are level within a few degrees


def test_no_face_on_pictures_without_one():
    assert find_faces(Image.fromarray(skimage.data.coffee())) == []
    assert find_faces(Image.new("RGB", (200, 160), (120, 130, 140))) == []
    noise = np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)
    assert find_faces(Image.fromarray(noise)) == []


def test_align_false_keeps_the_box_as_found(astronaut):
    turned = astronaut.rotate(10, resample=Image.Resampling.BILINEAR)
    (face,) = find_faces(turned, FaceSettings(align=False))
    assert face.angle == 0.0 and face.eyes is not None


def test_settings_come_from_prefixed_keys_and_unknown_ones_are_named():
    keys = {"faces": True, "face_min_size": 40, "face_margin": 0.3, "draw": True}
    assert FaceSettings.from_keys(keys) == FaceSettings(min_size=40, margin=0.3)
    with pytest.raises(UserError, match="face_min_neighbours: not a face setting"):
        FaceSettings.from_keys({"face_min_neighbours": 3})
    with pytest.raises(UserError, match="face_cascade=nothing.xml"):
        find_faces(Image.new("RGB", (64, 64)), FaceSettings(cascade="nothing.xml"))
