"""The emotion pipeline's picture for docs/emotion.md: a photo, its face and eyes, the aligned
crop the network sees, and the network's probabilities.

    python scripts/emotion_pictures.py --ckpt outputs/train/FER_RUN/checkpoints/last.ckpt \
        [--photo my_photo.jpg] [--turn 10] [--out docs/images/emotion_pipeline.png]

The photo defaults to scikit-image's astronaut, turned by ``--turn`` degrees so that the
alignment has something to undo. The checkpoint is an expression classifier (a data=fer2013
run); its data settings (size, channels, normalisation) prepare the crop, as cnnlab-predict
predict.faces=true does.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from cnnlab.data.faces import FaceSettings, aligned_crop, find_faces  # noqa: E402
from cnnlab.factory.restore import restore  # noqa: E402
from cnnlab.inference.classification import class_probs  # noqa: E402
from cnnlab.inference.files import class_names_of  # noqa: E402


def load_photo(path: str | None, turn: float) -> Image.Image:
    if path is None:
        import skimage.data

        photo = Image.fromarray(skimage.data.astronaut())
    else:
        photo = Image.open(path).convert("RGB")
    return photo.rotate(turn, resample=Image.Resampling.BILINEAR) if turn else photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a data=fer2013 run's checkpoint")
    parser.add_argument("--photo", default=None, help="default: scikit-image's astronaut")
    parser.add_argument("--turn", type=float, default=10.0, help="degrees, counter-clockwise")
    parser.add_argument("--out", default="docs/images/emotion_pipeline.png")
    args = parser.parse_args()

    photo = load_photo(args.photo, args.turn)
    settings = FaceSettings()
    faces = find_faces(photo, settings)
    if not faces:
        raise SystemExit("no face found in the photo")
    face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))

    run = restore(args.ckpt)
    dm, net = run.datamodule, run.module.net.eval()
    mode = "L" if dm.in_channels == 1 else "RGB"
    crop = aligned_crop(photo, face, settings.margin)
    size = dm.image_size or crop.width
    seen = crop.convert(mode).resize((size, size))
    probs = class_probs(net, seen, dm.transforms(train=False), dm.image_size, "cpu")
    names = class_names_of(dm) or [str(i) for i in range(len(probs))]

    marked = photo.copy()
    draw = ImageDraw.Draw(marked)
    draw.rectangle(face.box, outline="lime", width=3)
    for x, y in face.eyes or ():
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), outline="red", width=2)
    if face.eyes:
        draw.line([*face.eyes[0], *face.eyes[1]], fill="red", width=2)

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), gridspec_kw={"width_ratios": [1, 1, 1, 1.3]})
    axes[0].imshow(photo)
    axes[0].set_title(f"the photo (turned {args.turn:g}°)")
    axes[1].imshow(marked)
    axes[1].set_title(f"face and eyes: tilt {face.angle:.1f}°")
    axes[2].imshow(seen, cmap="gray" if mode == "L" else None)
    axes[2].set_title(f"aligned crop, {size}x{size} {'grey' if mode == 'L' else 'RGB'}")
    for ax in axes[:3]:
        ax.axis("off")
    order = list(range(len(probs)))
    axes[3].barh([names[i] for i in order], [float(probs[i]) for i in order], color="tab:blue")
    axes[3].invert_yaxis()
    axes[3].set_xlim(0, 1)
    best = int(probs.argmax())
    axes[3].set_title(f"probabilities: {names[best]} ({float(probs[best]):.2f})")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
