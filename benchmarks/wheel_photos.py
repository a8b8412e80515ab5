"""The real photos that ship in wheels: insightface's `t1.jpg` and `Tom_Hanks_54745.png`
(extracted from the insightface 2.1 wheel by `make wheel-photos`), scikit-image's astronaut
and matplotlib's `grace_hopper.jpg` (both installed with requirements.txt)."""

import os

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO_DIR = os.environ.get("TFFACE_WHEEL_PHOTOS", os.path.join(ROOT, ".whl", "photos"))
INSIGHTFACE_PHOTOS = ("t1.jpg", "Tom_Hanks_54745.png")


def load_wheel_photos(directory=None):
    """{"t1": uint8 [H, W, 3], "tom_hanks", "astronaut", "grace_hopper"} RGB photos.

    Raises FileNotFoundError naming `make wheel-photos` when the insightface photos are
    missing.
    """
    import matplotlib
    import skimage.data

    directory = directory or PHOTO_DIR
    photos = {}
    for file, key in zip(INSIGHTFACE_PHOTOS, ("t1", "tom_hanks"), strict=True):
        path = os.path.join(directory, file)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: run `make wheel-photos` (extracts it from the insightface "
                "2.1 wheel) or set TFFACE_WHEEL_PHOTOS to a directory holding "
                f"{', '.join(INSIGHTFACE_PHOTOS)}."
            )
        photos[key] = np.asarray(Image.open(path).convert("RGB"))
    photos["astronaut"] = np.asarray(skimage.data.astronaut())
    hopper = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    photos["grace_hopper"] = np.asarray(Image.open(hopper).convert("RGB"))
    return photos
