"""``data=imagefolder data.faces=true``: a folder of photos made from scikit-image's astronaut
(turned, mirrored, rescaled) trains on her aligned face crops, kept in a cache folder."""

import logging

import pytest
import skimage.data
import torch
from PIL import Image, ImageOps

from cnnlab.cli.train import train
from cnnlab.data import face_crops
from cnnlab.data.imagefolder import ImageFolderDataModule
from cnnlab.errors import UserError

TURN = Image.Resampling.BILINEAR


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    # 320 pixels: her face is ~60 pixels wide, large enough for the eye cascade, and each
    # photo is searched in ~0.03 s
    return Image.fromarray(skimage.data.astronaut()).resize((320, 320), TURN)


@pytest.fixture
def photos(tmp_path, astronaut):
    """root/train/{calm,smile}/: three photos of her face each, and a coffee cup in smile/."""
    root = tmp_path / "photos"
    variants = {
        "calm": [
            astronaut,
            astronaut.rotate(8, resample=TURN),
            astronaut.rotate(-8, resample=TURN),
        ],
        "smile": [
            ImageOps.mirror(astronaut),
            ImageOps.mirror(astronaut).rotate(5, resample=TURN),
            astronaut.resize((384, 384), TURN),
        ],
    }
    for name, pictures in variants.items():
        (root / "train" / name).mkdir(parents=True)
        for i, picture in enumerate(pictures):
            picture.save(root / "train" / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    coffee = Image.fromarray(skimage.data.coffee()).resize((300, 200))
    coffee.save(root / "train" / "smile" / "coffee.jpg")
    return root


def module(root, **kwargs) -> ImageFolderDataModule:
    kwargs = {"faces": True, "image_size": 48, "batch_size": 2, "val_fraction": 0.34, **kwargs}
    return ImageFolderDataModule(root=str(root), **kwargs)


@pytest.fixture
def searches(monkeypatch):
    """How many photos find_faces has searched, as a one-item list."""
    calls = [0]
    real = face_crops.find_faces

    def counting(image, settings):
        calls[0] += 1
        return real(image, settings)

    monkeypatch.setattr(face_crops, "find_faces", counting)
    return calls


def test_trains_on_face_crops_without_the_faceless_photo(photos, caplog, searches):
    dm = module(photos, in_memory=True)
    with caplog.at_level(logging.INFO, logger="cnnlab.data.imagefolder"):
        dm.setup()
    assert searches[0] == 7  # once per photo, though in_memory builds the datasets twice
    assert "no face found in 1 photo(s)" in caplog.text and "coffee.jpg" in caplog.text
    assert "0 reused, 7 photos searched" in caplog.text
    assert (len(dm.train_set), len(dm.val_set)) == (4, 2)  # 6 faces split without a val/ folder
    cache = photos / ".faces_cache"
    crops, no_face = sorted(cache.rglob("*.png")), list(cache.rglob("*.noface"))
    assert len(crops) == 6 and len(no_face) == 1
    for path, _ in dm.train_set.dataset.samples:
        assert path in map(str, crops)
    sides = [Image.open(path).size for path in crops]
    assert all(w == h and 70 < w < 110 for w, h in sides)  # a ~60-pixel face plus 20% margins
    images, labels = dm.memory["train"]
    assert images.shape == (4, 3, 48, 48) and sorted(set(labels.tolist())) == [0, 1]


def test_unchanged_photos_reuse_the_cache_and_new_settings_search_again(photos, caplog, searches):
    module(photos).setup()
    assert searches[0] == 7
    caplog.set_level(logging.INFO, logger="cnnlab.data.imagefolder")
    again = module(photos)
    again.setup()
    assert searches[0] == 7 and "7 reused, 0 photos searched" in caplog.text
    x, y = next(iter(again.train_dataloader()))
    assert x.shape == (2, 3, 48, 48) and y.shape == (2,)

    module(photos, face_margin=0.3).setup()
    assert searches[0] == 14
    changed = photos / "train" / "calm" / "0.jpg"
    ImageOps.mirror(Image.open(changed)).save(changed)
    module(photos, face_margin=0.3).setup()
    assert searches[0] == 15  # only the photo that changed
    assert len(list((photos / ".faces_cache").rglob("*.png"))) == 13


def test_a_class_without_faces_is_named_with_the_settings_to_try(photos):
    for path in (photos / "train" / "calm").iterdir():
        Image.new("RGB", (200, 200), (128, 128, 128)).save(path.with_suffix(".png"))
        path.unlink()
    with pytest.raises(UserError, match="class calm") as err:
        module(photos).setup()
    assert "face_min_neighbors" in str(err.value) and "face_min_size" in str(err.value)


def test_unreadable_photos_stop_the_run_unless_skip_corrupt(photos, caplog):
    broken = photos / "train" / "calm" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="skip_corrupt") as err:
        module(photos).setup()
    assert str(broken) in str(err.value)
    dm = module(photos, skip_corrupt=True)
    with caplog.at_level(logging.WARNING, logger="cnnlab.data.imagefolder"):
        dm.setup()
    assert dm.skipped == 1 and "broken.jpg" in caplog.text
    assert len(dm.train_set) + len(dm.val_set) == 6


def test_lenet_trains_on_the_faces_of_a_photo_folder(make_cfg, photos):
    cfg = make_cfg(
        [
            "data=imagefolder",
            f"data.root={photos}",
            "data.faces=true",
            "data.image_size=32",
            "data.batch_size=2",
            "data.num_workers=0",
            "data.val_fraction=0.34",
            "model=lenet",
            "trainer.max_epochs=1",
            "logger=none",
        ]
    )
    metrics = train(cfg)
    assert metrics["global_step"] == 2  # 4 training faces in batches of 2
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))
