"""A folder of real aligned face crops, `root/<person>/<variant>.png`, from the wheel photos.

The real faces tfface can use offline are the people in insightface's `t1.jpg` and
`Tom_Hanks_54745.png`, scikit-image's astronaut and matplotlib's `grace_hopper.jpg`
(`wheel_photos.py`): one photo each, every face a different person. A fine-tuning folder
needs several images per person, so each face is photographed again in software: the
photo mirrored, rotated by ±8°, brighter, darker, blurred and noisier, each then detected
landmarks moved with the photo (MTCNN runs once per photo) and aligned by the use-time
path, `tfface.align.align_face(template=...)` (dlib's predictor and chip for "dlib").
These are real faces under photometric and geometric change, not new photos of the same
people: verification on them is easier than on new photos, which the numbers that use the
folder say.

    .venv/bin/python benchmarks/real_face_folder.py /tmp/real_faces     # writes the folder
"""

import os
import sys

import numpy as np
from PIL import Image
from PIL import ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from wheel_photos import load_wheel_photos  # noqa: E402

MIN_SCORE = 0.9
ROTATIONS = (-8.0, 8.0)
# Flipping a photo swaps image-left and image-right: left eye ↔ right eye, mouth corners.
_FLIP_ORDER = [1, 0, 2, 4, 3]


def _rotate(photo, points, degrees, centre):
    """The photo rotated by `degrees` (counter-clockwise) about `centre`, and the points."""
    image = Image.fromarray(photo).rotate(
        degrees, resample=Image.BILINEAR, center=tuple(centre), fillcolor=(0, 0, 0)
    )
    theta = np.deg2rad(degrees)
    # PIL's y axis points down: a counter-clockwise turn on screen is clockwise in (x, y).
    c, s = np.cos(theta), np.sin(theta)
    d = points - centre
    rotated = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)
    return np.asarray(image), rotated + centre


def variants(photo, points):
    """[(name, image, landmarks)]: the photo and its re-photographed copies."""
    width = photo.shape[1]
    flipped = np.stack([width - 1 - points[:, 0], points[:, 1]], axis=1)[_FLIP_ORDER]
    out = [("original", photo, points), ("mirrored", photo[:, ::-1].copy(), flipped)]
    centre = points.mean(axis=0)
    for degrees in ROTATIONS:
        image, moved = _rotate(photo, points, degrees, centre)
        out.append((f"rotated{degrees:+.0f}", image, moved))
    scaled = photo.astype(np.float32)
    out.append(("brighter", np.clip(scaled * 1.3 + 10, 0, 255).astype(np.uint8), points))
    out.append(("darker", np.clip(scaled * 0.65, 0, 255).astype(np.uint8), points))
    blurred = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(1.5)))
    out.append(("blurred", blurred, points))
    rng = np.random.default_rng(0)
    noisy = np.clip(scaled + rng.normal(0, 10, photo.shape), 0, 255).astype(np.uint8)
    out.append(("noisy", noisy, points))
    return out


def write_real_face_folder(root, image_size=150, template="dlib"):
    """Writes `root/<person>/<variant>.png` aligned crops; returns {person: [paths]}.

    Raises FileNotFoundError (naming `make wheel-photos`) without insightface's photos.
    """
    from tfface.align import FaceDetector
    from tfface.align import align_face

    detector = FaceDetector()
    people = {}
    for name, photo in load_wheel_photos().items():
        boxes, scores, landmarks = detector.detect(photo)
        keep = np.flatnonzero(scores >= MIN_SCORE)
        keep = keep[np.argsort(boxes[keep, 0])]  # left to right
        for n, j in enumerate(keep):
            person = f"{name}_{n + 1}" if len(keep) > 1 else name
            folder = os.path.join(root, person)
            os.makedirs(folder, exist_ok=True)
            paths = []
            for variant, image, points in variants(photo, np.asarray(landmarks[j], np.float64)):
                crop = align_face(image, points, image_size, template=template)
                path = os.path.join(folder, f"{variant}.png")
                Image.fromarray(np.asarray(crop, np.uint8)).save(path)
                paths.append(path)
            people[person] = paths
    return people


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "real_faces"
    written = write_real_face_folder(target)
    total = sum(len(p) for p in written.values())
    print(f"{target}: {len(written)} people, {total} aligned 150x150 crops (dlib chip)")
