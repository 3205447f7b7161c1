"""``predict.faces=true``: the lecture's emotion pipeline on ordinary photographs.

Each photo's faces are found and aligned by the eyes (``cnnlab.data.faces``), each aligned
crop is converted to the training data's size and channels and normalised as in training, and
the network's most probable class is the face's label. Written: ``faces.json``, one row per face
(``file``, ``box`` [x1, y1, x2, y2] in the photo's pixels, ``angle`` the rotation applied in
degrees, counter-clockwise, ``label``, ``class_name``, ``probs`` one per class); with
``predict.draw``, ``<stem>.png`` (the photo with its boxes and labels) and ``<stem>_face<k>.png``
(the aligned crops as the network saw them, before normalisation). A photo without a face gets
no row and one log line.
"""

import logging
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.faces import FaceSettings, aligned_crop, find_faces
from cnnlab.inference.classification import class_probs
from cnnlab.inference.files import device_of, name_of, unique_stems, write_json
from cnnlab.viz.boxes import draw_detections
from cnnlab.viz.images import save_png

log = logging.getLogger("cnnlab")


def classify_faces(net, images: list, out_dir: Path, datamodule, names, settings) -> list[dict]:
    """``images`` [(path, PIL RGB)] -> out_dir/faces.json and the drawings (module docstring)."""
    faces_settings = FaceSettings.from_keys(settings)
    transform, image_size = datamodule.transforms(train=False), datamodule.image_size
    mode = "L" if datamodule.in_channels == 1 else "RGB"
    device = device_of(net)
    rows: list[dict] = []
    for (path, photo), stem in zip(images, unique_stems([p for p, _ in images]), strict=True):
        faces = find_faces(photo, faces_settings)
        if not faces:
            log.info("%s: no face found; no row written for it.", path)
        labels = []
        for k, face in enumerate(faces, start=1):
            crop = aligned_crop(photo, face, faces_settings.margin)
            probs = class_probs(net, crop.convert(mode), transform, image_size, device)
            label = int(probs.argmax())
            labels.append(label)
            rows.append(
                {
                    "file": str(path),
                    "box": list(face.box),
                    "angle": face.angle,
                    "label": label,
                    "class_name": name_of(label, names),
                    "probs": [round(float(p), 4) for p in probs],
                }
            )
            if settings.draw:
                size = (image_size, image_size) if image_size else crop.size
                save_png(crop.convert(mode).resize(size), out_dir / f"{stem}_face{k}.png")
        if settings.draw:
            drawn = draw_detections(
                torch.from_numpy(np.array(photo.convert("RGB"))).permute(2, 0, 1),
                torch.tensor([list(f.box) for f in faces], dtype=torch.float32).reshape(-1, 4),
                torch.tensor(labels, dtype=torch.long) + 1,  # detection labels start at 1
                torch.tensor([r["probs"][r["label"]] for r in rows[len(rows) - len(faces) :]]),
                names,
            )
            save_png(drawn, out_dir / f"{stem}.png")
    write_json(rows, out_dir / "faces.json")
    log.info("%d face(s) in %d photo(s) -> %s", len(rows), len(images), out_dir / "faces.json")
    return rows
