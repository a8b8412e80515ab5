"""`dlib_face_chip`: dlib's `get_face_chip` (from its 5 landmarks) reproduced in NumPy.

dlib crops the input of its face recognition ResNet with `get_face_chip_details(shape,
150, 0.25)` and `extract_image_chip` (dlib/image_transforms/interpolation.h). Reproduced
step by step, so the crop is dlib's to the pixel (`benchmarks/dlib_alignment.py`):

- `chip_details`: the similarity from the chip template (dlib's 5-point mean face,
  (padding + p) / (1 + 2·padding) · size) to the landmarks gives an angle (of M·(1, 0)), a
  scale |M·(1, 0)| and the rectangle of side size·scale − 1 centred on M·(size/2, size/2);
- `extract_image_chips`: chip pixels (0, 0), (cols − 1, 0), (0, rows − 1) map to the
  rotated rectangle's tl, tr and bl corners, sampled with `interpolate_bilinear` (the 2×2
  neighbourhood must lie inside the image, else 0; values truncated to uint8) from the
  crop of the image around the rectangle, or from a `pyramid_down<2>` level of it when
  the rectangle is more than ~4× the chip's area.
"""

import math

import numpy as np

from tfface.align.similarity import estimate_similarity
from tfface.face_templates import DLIB_5POINT_MEAN_FACE


def _round(x):
    # dlib turns double coordinates into integer ones with floor(x + 0.5).
    return math.floor(x + 0.5)


def face_chip_details(parts, size=150, padding=0.25):
    """dlib's `get_face_chip_details` for a 5-point shape.

    Args:
        parts: [5, 2] dlib 5-point landmarks (`DlibShapePredictor` order).
        size: side of the square chip.
        padding: border around dlib's mean face, as a fraction of its size.

    Returns:
        (rect, angle): rect = (left, top, right, bottom) floats of the unrotated
        extraction rectangle in image pixels, angle in radians.
    """
    parts = np.asarray(parts, dtype=np.float64)
    if parts.shape != (5, 2) or not np.all(np.isfinite(parts)):
        raise ValueError(
            f"`parts` must be finite dlib 5-point landmarks of shape [5, 2]. Received "
            f"shape {parts.shape}"
        )
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"`size` must be a positive int. Received: size={size!r}")
    chip_points = (padding + DLIB_5POINT_MEAN_FACE) / (2 * padding + 1) * size
    tform = estimate_similarity(chip_points, parts)
    p = tform[:2, :2] @ np.array([1.0, 0.0])
    angle = math.atan2(p[1], p[0])
    scale = math.hypot(p[0], p[1])
    centre = tform[:2, :2] @ np.array([size / 2.0, size / 2.0]) + tform[:2, 2]
    # centered_drect(p, w, h) spans w − 1 and h − 1 (dlib's inclusive-pixel convention).
    half = (size * scale - 1) / 2
    rect = (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
    return rect, angle


def _rotate(centre, point, angle):
    c, s = math.cos(angle), math.sin(angle)
    x, y = point[0] - centre[0], point[1] - centre[1]
    return (c * x - s * y + centre[0], s * x + c * y + centre[1])


def _corners(rect, angle):
    """The rect's tl, tr, bl, br corners rotated by `angle` about its centre."""
    left, top, right, bottom = rect
    centre = ((left + right) / 2, (top + bottom) / 2)
    return [
        _rotate(centre, p, angle)
        for p in ((left, top), (right, top), (left, bottom), (right, bottom))
    ]


def _area(rect):
    left, top, right, bottom = rect
    if left > right or top > bottom:
        return 0.0
    return (right - left) * (bottom - top)


def _rect_down(rect):
    # pyramid_down<2>::point_down(p) = p / 2 − (1.25, 0.75).
    left, top, right, bottom = rect
    return (left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75)


def pyramid_down_2(image):
    """dlib's `pyramid_down<2>` of an RGB uint8 image: the separable [1 4 6 4 1] filter on
    every second row and column, in 16-bit integers, divided by 256 (truncating)."""
    image = image.astype(np.uint32)
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), np.uint8)
    out_rows, out_cols = (rows - 3) // 2, (cols - 3) // 2
    weights = (1, 4, 6, 4, 1)
    horizontal = sum(w * image[:, k : k + 2 * out_cols : 2] for k, w in enumerate(weights))
    vertical = sum(w * horizontal[k : k + 2 * out_rows : 2] for k, w in enumerate(weights))
    return (vertical // 256).astype(np.uint8)


def _bilinear(image, x, y):
    """dlib's `interpolate_bilinear` of `image` at float64 [rows, cols] coordinates."""
    rows, cols = image.shape[:2]
    left = np.floor(x).astype(np.int64)
    top = np.floor(y).astype(np.int64)
    inside = (left >= 0) & (top >= 0) & (left + 1 < cols) & (top + 1 < rows)
    left, top = np.where(inside, left, 0), np.where(inside, top, 0)
    lr = (x - left)[..., None]
    tb = (y - top)[..., None]
    img = image.astype(np.float64)
    right, bottom = np.minimum(left + 1, cols - 1), np.minimum(top + 1, rows - 1)
    tl, tr = img[top, left], img[top, right]
    bl, br = img[bottom, left], img[bottom, right]
    value = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
    # assign_pixel(unsigned char, double) clamps and truncates.
    value = np.clip(value, 0, 255).astype(np.uint8)
    value[~inside] = 0
    return value


def extract_image_chip(image, rect, angle, rows, cols):
    """dlib's `extract_image_chip(img, chip_details(rect, chip_dims(rows, cols), angle))`.

    Args:
        image: uint8 [H, W, 3] RGB image.
        rect: (left, top, right, bottom) floats, the unrotated extraction rectangle.
        angle: rotation in radians (as `face_chip_details` returns it).
        rows, cols: chip size.

    Returns:
        uint8 [rows, cols, 3] chip and the float64 [3, 3] chip → image matrix.
    """
    height, width = image.shape[:2]
    if not isinstance(rows, (int, np.integer)) or not isinstance(cols, (int, np.integer)):
        raise ValueError(f"`rows` and `cols` must be ints. Received: rows={rows!r}, cols={cols!r}")
    if rows < 1 or cols < 1:
        raise ValueError(f"`rows` and `cols` must be >= 1. Received: rows={rows}, cols={cols}")
    # (dlib copies an unrotated integer rectangle of exactly rows × cols without resampling;
    # a face chip's rectangle is never one, so that branch is not reproduced.)
    # The crop dlib works on: the rotated rect's bounding box grown by 2 px per pyramid
    # level (×2 + 2 each), clipped to the image and rounded to integer pixels.
    grow = 2.0
    down = _rect_down(rect)
    while _area(down) > rows * cols:
        down = _rect_down(down)
        grow = grow * 2 + 2
    corners = np.array(_corners(rect, angle))
    box = (
        max(corners[:, 0].min() - grow, 0.0),
        max(corners[:, 1].min() - grow, 0.0),
        min(corners[:, 0].max() + grow, width - 1.0),
        min(corners[:, 1].max() + grow, height - 1.0),
    )
    box = [_round(v) for v in box]
    if box[0] > box[2] or box[1] > box[3]:  # the rectangle is wholly outside the image
        box = [0, 0, -1, -1]
    source = image[box[1] : box[3] + 1, box[0] : box[2] + 1]
    offset = (box[0], box[1])
    local = (rect[0] - offset[0], rect[1] - offset[1], rect[2] - offset[0], rect[3] - offset[1])
    level = -1
    while _area(_rect_down(local)) > rows * cols:
        level += 1
        local = _rect_down(local)
    # The level dlib picks is the last it built (the shifted rect has the same area).
    for _ in range(level + 1):
        source = pyramid_down_2(source)
    tl, tr, bl, _ = _corners(local, angle)
    # Chip (c, r) → source: tl + c·(tr − tl)/(cols − 1) + r·(bl − tl)/(rows − 1).
    m = np.eye(3)
    m[:2, 0] = (np.subtract(tr, tl)) / max(cols - 1, 1)
    m[:2, 1] = (np.subtract(bl, tl)) / max(rows - 1, 1)
    m[:2, 2] = tl
    cc, rr = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))
    x = m[0, 0] * cc + m[0, 1] * rr + m[0, 2]
    y = m[1, 0] * cc + m[1, 1] * rr + m[1, 2]
    if source.shape[0] < 2 or source.shape[1] < 2:  # the rectangle is outside the image
        chip = np.zeros((rows, cols, 3), np.uint8)
    else:
        chip = _bilinear(source, x, y)
    # The chip → original image matrix, through the pyramid levels used.
    to_image = m
    for _ in range(level + 1):
        up = np.array([[2.0, 0, 2.5], [0, 2.0, 1.5], [0, 0, 1]])  # point_up: (p + (1.25, 0.75))·2
        to_image = up @ to_image
    to_image = np.array([[1.0, 0, offset[0]], [0, 1, offset[1]], [0, 0, 1]]) @ to_image
    return chip, to_image


def dlib_face_chip(image, parts, size=150, padding=0.25, return_matrix=False):
    """dlib's `get_face_chip(image, shape, size, padding)` from dlib 5-point landmarks.

    Args:
        image: uint8 [H, W, 3] RGB image.
        parts: [5, 2] dlib 5-point landmarks (`DlibShapePredictor`).
        size: chip side (150 for `dlib_resnet_v1`).
        padding: 0.25 for `dlib_resnet_v1`.
        return_matrix: also return the [3, 3] image → chip matrix.

    Returns:
        uint8 [size, size, 3] chip (and the matrix).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"`image` must be a uint8 [H, W, 3] RGB array. Received dtype={image.dtype}, "
            f"shape {image.shape}"
        )
    rect, angle = face_chip_details(parts, size, padding)
    chip, to_image = extract_image_chip(image, rect, angle, size, size)
    return (chip, np.linalg.inv(to_image)) if return_matrix else chip
