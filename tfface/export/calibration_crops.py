"""Aligned face crops that calibrate int8 post-training quantisation.

int8 quantisation measures each activation's range on a representative set of inputs and
rounds to 256 levels inside it, so the set should look like what the model will see: faces
aligned on the model's own template at its own size. Two sources:

- a folder of aligned crops (e.g. what `python -m tfface.align` writes): every image file
  under it, recursively, resized to S×S when it is another size;
- by default, synthetic faces (`tfface.data.synthetic`, held-out identities) aligned on the
  model's template points with a similarity transform: offline and repeatable, but drawn
  faces, not photos (BENCHMARKS.md "Export formats" measures what that costs on real
  photos).

`CalibrationCrops.description` says which one calibrated a model; the exporters record it
in the model metadata.
"""

import dataclasses
import os

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_COUNT = 100


@dataclasses.dataclass
class CalibrationCrops:
    """Calibration inputs.

    Attributes:
        images: float32 [N, S, S, 3] RGB pixels in 0–255.
        description: where they came from, e.g. "100 synthetic faces aligned on the dlib
            template" or "100 aligned crops from /data/crops (2 unreadable skipped)".
        skipped: [(path, reason)] of files that could not be read.
    """

    images: np.ndarray
    description: str
    skipped: list = dataclasses.field(default_factory=list)


def list_crop_files(directory):
    """Sorted image files (by extension) under `directory`, recursively."""
    files = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        files += [
            os.path.join(root, n)
            for n in sorted(names)
            if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")
        ]
    return files


def folder_crops(directory, image_size, count=DEFAULT_COUNT, seed=0):
    """Up to `count` crops read from `directory` (a seeded sample when it holds more).

    Raises:
        ValueError: `directory` holds no readable image.
    """
    from PIL import Image
    from PIL import UnidentifiedImageError

    files = list_crop_files(directory)
    if not files:
        raise ValueError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) under the calibration folder. "
            f"Received: {directory}"
        )
    order = np.random.default_rng(seed).permutation(len(files))
    images, skipped, resized = [], [], 0
    for i in order:
        if len(images) == count:
            break
        path = files[i]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if im.size != (image_size, image_size):
                    resized += 1
                    im = im.resize((image_size, image_size), Image.BILINEAR)
                images.append(np.asarray(im, dtype=np.float32))
        except (OSError, UnidentifiedImageError) as e:
            skipped.append((path, str(e)))
    if not images:
        raise ValueError(
            f"None of the {len(files)} image files under {directory} could be read "
            f"(first: {skipped[0][0]}: {skipped[0][1]})."
        )
    notes = []
    if resized:
        notes.append(f"{resized} resized to {image_size}x{image_size}")
    if skipped:
        notes.append(f"{len(skipped)} unreadable skipped")
    note = f" ({', '.join(notes)})" if notes else ""
    return CalibrationCrops(
        np.stack(images),
        f"{len(images)} aligned crops from {directory}{note}",
        skipped,
    )


def synthetic_crops(image_size, template, count=DEFAULT_COUNT, seed=0):
    """`count` synthetic faces of distinct held-out identities, aligned on `template`.

    Args:
        image_size: S.
        template: {"name", "points"} as in the model metadata (points: [5, 2] in crop
            pixels), or a `tfface.align` template name.
    """
    from tfface.align import align_face
    from tfface.data.synthetic import HELDOUT_ID_OFFSET
    from tfface.data.synthetic import SyntheticFaces

    if isinstance(template, dict):
        name, points = template.get("name", "custom"), np.asarray(template["points"], np.float64)
    else:
        from tfface.face_templates import template_for

        name, points = template, template_for(template, image_size)
    # Rendered at >= 112 px so small models still get faces drawn with detail, then warped
    # onto the template at S (align_face's similarity transform, no detector involved).
    faces = SyntheticFaces(image_size=max(112, image_size), seed=seed)
    ids = HELDOUT_ID_OFFSET + np.arange(count)
    rendered, landmarks = faces.render(ids, np.zeros(count, np.int64))
    crops = np.stack(
        [
            align_face(image, face_points, image_size, template=points)
            for image, face_points in zip(rendered, landmarks, strict=True)
        ]
    ).astype(np.float32)
    return CalibrationCrops(
        crops,
        f"{count} synthetic faces (tfface.data.synthetic, seed {seed}) aligned on the "
        f"{name} template at {image_size}x{image_size}",
    )
