"""`--draw` geometry (issue 17, defect 10): every label starts with its face's number (the
`face` column of the printed table), lies inside the image and overlaps no other label.
The checks are on rectangles, never on the pixels of a font."""

import itertools

import numpy as np
import pytest

from tfface.cli.draw import draw_faces
from tfface.cli.draw import label_layout
from tfface.cli.draw import place_labels


def _inside(rect, size):
    x1, y1, x2, y2 = rect
    return 0 <= x1 <= x2 <= size[0] and 0 <= y1 <= y2 <= size[1]


def _overlap(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _gap(label, box):
    """Distance between two rectangles (0 when they touch or overlap)."""
    dx = max(box[0] - label[2], label[0] - box[2], 0)
    dy = max(box[1] - label[3], label[1] - box[3], 0)
    return float(np.hypot(dx, dy))


def _check(rects, boxes, size):
    for rect in rects:
        assert _inside(rect, size), (rect, size)
    for a, b in itertools.combinations(rects, 2):
        assert not _overlap(a, b), (a, b)


def test_labels_at_the_edges_stay_inside_the_image():
    size = (400, 300)
    boxes = [
        (0, 0, 60, 70),  # top-left corner: no room above
        (360, 120, 400, 170),  # right edge: a wide label must move left
        (150, 250, 200, 300),  # bottom edge
    ]
    sizes = [(120, 20), (150, 20), (100, 20)]
    rects = place_labels(boxes, sizes, size)
    _check(rects, boxes, size)
    for rect, box, (w, h) in zip(rects, boxes, sizes, strict=True):
        assert (rect[2] - rect[0], rect[3] - rect[1]) == (w, h)
        assert _gap(rect, box) == 0, "with room beside its box a label touches it"


def test_neighbouring_faces_get_labels_that_do_not_overlap():
    # A row of faces closer together than their labels are wide (a group photo).
    size = (640, 480)
    boxes = [(40 + 70 * i, 200, 100 + 70 * i, 270) for i in range(8)]
    sizes = [(130, 22)] * 8
    rects = place_labels(boxes, sizes, size)
    _check(rects, boxes, size)
    # Each label stays near its own face: nearer to it than to any other face.
    for i, rect in enumerate(rects):
        own = _gap(rect, boxes[i])
        assert own <= min(_gap(rect, b) for j, b in enumerate(boxes) if j != i) + 1e-9
        assert own < 100


@pytest.mark.parametrize("seed", range(20))
def test_random_crowds_keep_labels_inside_and_apart(seed):
    rng = np.random.default_rng(seed)
    size = (int(rng.integers(300, 1200)), int(rng.integers(300, 1200)))
    n = int(rng.integers(1, 15))
    boxes = []
    for _ in range(n):
        side = float(rng.uniform(20, 120))
        x, y = rng.uniform(0, size[0] - side), rng.uniform(0, size[1] - side)
        boxes.append((x, y, x + side, y + side))
    sizes = [(int(rng.integers(20, 160)), 18) for _ in range(n)]
    _check(place_labels(boxes, sizes, size), boxes, size)


def test_a_label_wider_than_the_image_is_shortened_to_fit():
    size = (120, 90)
    font, rects, texts = label_layout(size, [(10, 30, 60, 80)], ["0 " + "Wolfeschlegelstein" * 3])
    assert texts[0].startswith("0 ") and texts[0].endswith("…")
    _check(rects, None, size)


def test_draw_faces_numbers_each_face_and_draws_the_placed_labels():
    image = np.zeros((200, 300, 3), np.uint8)
    boxes = np.array([[0, 0, 50, 60], [40, 5, 95, 65], [250, 100, 300, 160]], np.float32)
    labels = ["Grace Hopper 0.99", "unknown 0.41", "Eileen Collins 0.97"]
    known = [True, False, True]
    drawn = np.asarray(draw_faces(image, boxes, labels=labels, known=known))
    assert drawn.shape == image.shape
    font, rects, texts = label_layout((300, 200), boxes, [f"{i} {t}" for i, t in enumerate(labels)])
    assert texts == ["0 Grace Hopper 0.99", "1 unknown 0.41", "2 Eileen Collins 0.97"]
    _check(rects, boxes, (300, 200))
    for rect, is_known in zip(rects, known, strict=True):
        # The label's background: its top-left corner pixel is the face's colour.
        x, y = int(np.ceil(rect[0])), int(np.ceil(rect[1]))
        colour = drawn[y, x]
        assert (colour[1] > colour[0]) == is_known, (rect, colour)
