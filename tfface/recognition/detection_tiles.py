"""Detection on large photos: a downscaled pass, then full-resolution tiles for the faces
the downscaled copy made too small.

Detecting on a copy downscaled by s (so its longer side is `max_detect_side`) loses every
face under `min_face_size / s` pixels in the photo, and MTCNN is unreliable on faces just
above its `min_face_size` too. The tile pass runs the detector on overlapping windows of
the photo at full resolution, each at most `max_detect_side` on a side (so a window costs
at most what the downscaled pass costs, in time and memory). Consecutive windows overlap by
`overlap` pixels, so every face up to that size lies whole inside one window; detections
touching a window's inner edge are cut faces and are dropped. Tile detections of a face the
downscaled pass already found are dropped too, so that pass's faces come back unchanged.
"""

import math

import numpy as np

# A box within this many pixels of a window edge that is not the photo's edge is a face cut
# by the window (the whole face lies in the neighbouring window, which overlaps this one).
_EDGE_MARGIN = 2.0
# A tile detection is the same face as a kept detection when their boxes overlap by this
# fraction of the smaller box (a face found twice, or a part of a larger face).
_SAME_FACE_OVERLAP = 0.5


def tile_origins(length, tile, overlap):
    """Start offsets of windows of size `tile` covering [0, length) with consecutive windows
    overlapping by at least `overlap` (the last window ends at `length`)."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    if stride < 1:
        raise ValueError(
            f"`overlap` must be smaller than the tile. Received: overlap={overlap}, tile={tile}"
        )
    count = math.ceil((length - tile) / stride) + 1
    # Spread evenly: the overlaps are then as large as the count allows (>= `overlap`).
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def overlap_fraction(boxes, box):
    """Intersection of each of `boxes` [N, 4] with `box` [4] over the smaller of the two
    areas (x1, y1, x2, y2 boxes)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    h = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    own = (box[2] - box[0]) * (box[3] - box[1])
    return w * h / np.maximum(np.minimum(area, own), 1e-9)


def detect_on_tiles(detect, image, tile, overlap):
    """`detect(window)` → (boxes, scores, landmarks) on each window of `image`, in photo
    pixels, without the faces cut by a window's inner edge."""
    height, width = image.shape[:2]
    found = []
    for y0 in tile_origins(height, tile, overlap):
        for x0 in tile_origins(width, tile, overlap):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            boxes, scores, landmarks = detect(image[y0:y1, x0:x1])
            # Inner edges only: a face at the photo's own edge is not cut by the window.
            low = np.where([x0 > 0, y0 > 0], _EDGE_MARGIN, -np.inf)
            high = np.where(
                [x1 < width, y1 < height],
                [x1 - x0 - _EDGE_MARGIN, y1 - y0 - _EDGE_MARGIN],
                np.inf,
            )
            whole = np.all((boxes[:, :2] > low) & (boxes[:, 2:] < high), axis=1)
            shift = np.array([x0, y0], np.float32)
            for i in np.flatnonzero(whole):
                found.append(
                    (boxes[i] + np.tile(shift, 2), scores[i], landmarks[i] + shift),
                )
    if not found:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0, 5, 2), np.float32),
        )
    boxes, scores, landmarks = (np.stack(parts) for parts in zip(*found, strict=True))
    return boxes.astype(np.float32), scores.astype(np.float32), landmarks.astype(np.float32)


def add_new_faces(kept, extra):
    """`kept` (boxes, scores, landmarks) plus the detections of `extra` that are not a face
    of `kept` (or of a higher-scoring detection of `extra`), sorted by descending score."""
    boxes, scores, landmarks = (list(part) for part in kept)
    for i in np.argsort(-extra[1], kind="stable"):
        box = extra[0][i]
        if boxes and np.max(overlap_fraction(np.stack(boxes), box)) >= _SAME_FACE_OVERLAP:
            continue
        boxes.append(box)
        scores.append(extra[1][i])
        landmarks.append(extra[2][i])
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    return (
        np.asarray(boxes, np.float32).reshape(-1, 4)[order],
        np.asarray(scores, np.float32).reshape(-1)[order],
        np.asarray(landmarks, np.float32).reshape(-1, 5, 2)[order],
    )
