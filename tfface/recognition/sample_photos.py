"""A tiny folder of real face photos built from images that ship inside installed wheels,
for the README walkthrough, the tests and the latency benchmark (nothing is downloaded).

    python -m tfface.recognition.sample_photos /tmp/demo

writes `/tmp/demo/people/<name>/*.png` (four views of each enrolled person: the photo, its
mirror image, a tighter crop and a darker copy) and `/tmp/demo/group.png`: both enrolled
people, rotated a few degrees and rescaled, beside a third person who is not enrolled.

Sources: scikit-image's `astronaut` (Eileen Collins, NASA, public domain) and `camera`
(the "cameraman" test image), matplotlib's `grace_hopper.jpg` (U.S. Navy, public domain).
"""

import os
import sys

import numpy as np
from PIL import Image
from PIL import ImageEnhance

ENROLLED = ("Eileen Collins", "Grace Hopper")
STRANGER = "cameraman"


def source_photos():
    """{name: uint8 RGB array} of the three people."""
    import matplotlib
    import skimage.data

    hopper = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    with Image.open(hopper) as im:
        hopper = np.asarray(im.convert("RGB"))
    return {
        "Eileen Collins": skimage.data.astronaut(),
        "Grace Hopper": hopper,
        STRANGER: np.repeat(skimage.data.camera()[:, :, None], 3, axis=-1),
    }


def _views(image):
    im = Image.fromarray(image)
    w, h = im.size
    return {
        "photo": im,
        "mirror": im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "crop": im.crop((w // 10, 0, w - w // 10, h - h // 8)).resize((w, h), Image.BILINEAR),
        "dark": ImageEnhance.Brightness(im).enhance(0.7),
    }


def group_photo(photos=None, height=360):
    """One uint8 RGB photo with the three people side by side (each rotated and rescaled)."""
    photos = photos or source_photos()
    tiles = []
    for angle, name in zip((6, -5, 0), (*ENROLLED, STRANGER), strict=True):
        im = Image.fromarray(photos[name]).rotate(
            angle, resample=Image.BILINEAR, fillcolor=(255,) * 3
        )
        tiles.append(im.resize((round(im.width * height / im.height), height), Image.BILINEAR))
    canvas = Image.new("RGB", (sum(t.width for t in tiles), height), (255, 255, 255))
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width
    return np.asarray(canvas)


def write_demo_photos(root):
    """Writes `root/people/<name>/<view>.png` and `root/group.png`; returns their paths."""
    photos = source_photos()
    for name in ENROLLED:
        folder = os.path.join(root, "people", name)
        os.makedirs(folder, exist_ok=True)
        for view, im in _views(photos[name]).items():
            im.save(os.path.join(folder, f"{view}.png"))
    group = os.path.join(root, "group.png")
    Image.fromarray(group_photo(photos)).save(group)
    return os.path.join(root, "people"), group


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m tfface.recognition.sample_photos OUTPUT_DIR", file=sys.stderr)
        sys.exit(2)
    people, group = write_demo_photos(sys.argv[1])
    print(f"enrol: {people}\nidentify: {group}")
