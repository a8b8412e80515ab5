"""`draw_faces`: the photo with each face's box, landmarks, number and label, for `--draw`.

Every label starts with the face's number, the `face` column of the table the command
prints, so a box and its row can be told apart in a group photo. Labels are laid out by
`place_labels`: inside the image, never on top of one another, each as near its own box
as room allows (above it, else below it, else inside its top edge, else the nearest free
place, joined to its box by a line). A label wider than the image is shortened with "…".
"""

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

_KNOWN = (40, 200, 60)
_UNKNOWN = (230, 60, 40)
_TEXT = (255, 255, 255)


def _gaps(xs, ys, w, h, box):
    """Distance from each candidate rectangle (x, y, x + w, y + h) to `box`."""
    dx = np.maximum(np.maximum(box[0] - (xs + w), xs - box[2]), 0)
    dy = np.maximum(np.maximum(box[1] - (ys + h), ys - box[3]), 0)
    return np.hypot(dx, dy)


def _overlaps(xs, ys, w, h, rects):
    """[N] bool: candidate rectangle i overlaps (with positive area) one of `rects`."""
    if not len(rects):
        return np.zeros(len(xs), bool)
    r = np.asarray(rects, np.float64)
    ox = np.minimum(xs[:, None] + w, r[None, :, 2]) - np.maximum(xs[:, None], r[None, :, 0])
    oy = np.minimum(ys[:, None] + h, r[None, :, 3]) - np.maximum(ys[:, None], r[None, :, 1])
    return ((ox > 1e-9) & (oy > 1e-9)).any(axis=1)


def _overlap_area(xs, ys, w, h, rects):
    if not len(rects):
        return np.zeros(len(xs))
    r = np.asarray(rects, np.float64)
    ox = np.minimum(xs[:, None] + w, r[None, :, 2]) - np.maximum(xs[:, None], r[None, :, 0])
    oy = np.minimum(ys[:, None] + h, r[None, :, 3]) - np.maximum(ys[:, None], r[None, :, 1])
    return (np.maximum(ox, 0) * np.maximum(oy, 0)).sum(axis=1)


def _axis(limit, size):
    """Candidate offsets 0..limit-size on a quarter-label grid, the far edge included."""
    top = max(limit - size, 0.0)
    return np.unique(np.append(np.arange(0.0, top, max(1.0, size / 4)), top))


def place_labels(boxes, sizes, image_size):
    """Label rectangles [(x1, y1, x2, y2)], one per box, for labels of `sizes[i] = (w, h)`
    on an image of `image_size = (width, height)`.

    Each lies inside the image and overlaps no other label whenever the image has room.
    Preferred places, in order: above its box, below it, inside its top edge (each
    left-aligned with the box, moved in from the image's side), if that covers no other
    label or face; else the free place nearest the box; else (no free place) the place
    overlapping other labels least. Faces are placed top to bottom.
    """
    width, height = (float(v) for v in image_size)
    boxes = [tuple(float(v) for v in b) for b in boxes]
    placed = [None] * len(boxes)
    taken = []
    for i in sorted(range(len(boxes)), key=lambda j: (boxes[j][1], boxes[j][0])):
        x1, y1, x2, y2 = box = boxes[i]
        w, h = min(float(sizes[i][0]), width), min(float(sizes[i][1]), height)
        ax = min(max(x1, 0.0), width - w)
        near = [(ax, y) for y in (y1 - h, y2, y1) if 0.0 <= y <= height - h]
        others = [b for j, b in enumerate(boxes) if j != i]
        choice = None
        for x, y in near:
            xs, ys = np.array([x]), np.array([y])
            if not _overlaps(xs, ys, w, h, taken)[0] and not _overlaps(xs, ys, w, h, others)[0]:
                choice = (x, y)
                break
        if choice is None:
            gx, gy = np.meshgrid(_axis(width, w), _axis(height, h))
            xs, ys = gx.ravel(), gy.ravel()
            anchor_y = min(max(y1 - h, 0.0), height - h)
            order = np.lexsort((np.hypot(xs - ax, ys - anchor_y), _gaps(xs, ys, w, h, box)))
            xs, ys = xs[order], ys[order]
            free = np.flatnonzero(~_overlaps(xs, ys, w, h, taken))
            k = free[0] if free.size else int(np.argmin(_overlap_area(xs, ys, w, h, taken)))
            choice = (float(xs[k]), float(ys[k]))
        rect = (choice[0], choice[1], choice[0] + w, choice[1] + h)
        placed[i] = rect
        taken.append(rect)
    return placed


def _font(image_size):
    size = max(12, round(max(image_size) / 40))
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _pad(image_size):
    return max(2, round(max(image_size) / 400))


def _text_size(font, text, pad):
    left, top, right, bottom = font.getbbox(text)
    return right - left + 2 * pad, bottom - top + 2 * pad


def _fit(font, text, pad, width):
    """`text`, shortened from the end with "…" until its label fits `width`."""
    if _text_size(font, text, pad)[0] <= width:
        return text
    for n in range(len(text) - 1, 0, -1):
        shorter = text[:n].rstrip() + "…"
        if _text_size(font, shorter, pad)[0] <= width:
            return shorter
    return text[:1]


def label_layout(image_size, boxes, texts):
    """(font, label rectangles, texts as drawn) for labels `texts` of `boxes` on an image
    of `image_size = (width, height)`; what `draw_faces` draws."""
    font, pad = _font(image_size), _pad(image_size)
    texts = [_fit(font, t, pad, image_size[0]) for t in texts]
    sizes = [_text_size(font, t, pad) for t in texts]
    return font, place_labels(boxes, sizes, image_size), texts


def _leader(rect, box):
    """The shortest segment from a label to its box (None when they touch)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    px, py = min(max(cx, rect[0]), rect[2]), min(max(cy, rect[1]), rect[3])
    qx, qy = min(max(px, box[0]), box[2]), min(max(py, box[1]), box[3])
    return None if (px, py) == (qx, qy) else [(px, py), (qx, qy)]


def draw_faces(image, boxes, labels=None, landmarks=None, known=None):
    """Returns a PIL image of uint8 RGB `image` with boxes, optional five-point landmarks and
    labels drawn. Face i's label is "i" followed by `labels[i]` (if given); `known[i]`
    False draws face i in red (e.g. "unknown"), else green."""
    im = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(im)
    boxes = [tuple(float(v) for v in box) for box in boxes]
    pad = _pad(im.size)
    colors = [_UNKNOWN if known is not None and not known[i] else _KNOWN for i in range(len(boxes))]
    for i, box in enumerate(boxes):
        draw.rectangle(box, outline=colors[i], width=pad)
        if landmarks is not None:
            for x, y in landmarks[i]:
                draw.ellipse([x - pad, y - pad, x + pad, y + pad], fill=colors[i])
    texts = [
        f"{i} {labels[i]}" if labels is not None and labels[i] else str(i)
        for i in range(len(boxes))
    ]
    font, rects, texts = label_layout(im.size, boxes, texts)
    # Labels last, so that no box is drawn over one.
    for rect, box, text, color in zip(rects, boxes, texts, colors, strict=True):
        leader = _leader(rect, box)
        if leader is not None:
            draw.line(leader, fill=color, width=max(1, pad // 2))
        draw.rectangle(rect, fill=color)
        left, top, _, _ = font.getbbox(text)
        draw.text((rect[0] + pad - left, rect[1] + pad - top), text, fill=_TEXT, font=font)
    return im
