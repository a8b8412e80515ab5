"""The tile pass for large photos: window layout, cut faces at window edges, merging."""

import numpy as np
import pytest

from tfface.recognition import detection_tiles


@pytest.mark.parametrize(
    "length, tile, overlap", [(1000, 400, 100), (4000, 1600, 150), (401, 400, 5)]
)
def test_windows_cover_the_side_and_overlap(length, tile, overlap):
    starts = detection_tiles.tile_origins(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_window_layout_edge_cases():
    assert detection_tiles.tile_origins(300, 400, 100) == [0]
    with pytest.raises(ValueError, match="Received: overlap=400, tile=400"):
        detection_tiles.tile_origins(1000, 400, 400)


def _fake_detector(faces):
    """A detector that sees the parts of `faces` (photo boxes) inside each window, as
    MTCNN sees a face cut by the window edge: a box clipped to the window."""
    calls = []

    def make(image):
        def detect(window):
            x0, y0 = window[0, 0]  # the photo's pixels hold their own (x, y)
            h, w = window.shape[:2]
            calls.append((x0, y0, w, h))
            boxes = []
            for box in faces:
                clipped = [
                    max(box[0], x0) - x0,
                    max(box[1], y0) - y0,
                    min(box[2], x0 + w) - x0,
                    min(box[3], y0 + h) - y0,
                ]
                if clipped[0] < clipped[2] and clipped[1] < clipped[3]:
                    boxes.append(clipped)
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2
            return boxes, np.ones(len(boxes), np.float32), np.repeat(centre[:, None], 5, 1)

        return detect

    return make, calls


def test_tiles_drop_cut_faces_and_keep_whole_ones_once():
    image = np.stack(np.meshgrid(np.arange(900), np.arange(500)), axis=-1)
    faces = np.array(
        [
            [10, 10, 40, 40],  # at the photo's corner: not cut by a window
            [380, 200, 420, 240],  # across the first vertical window edge (x = 400)
            [600, 450, 640, 500],  # at the photo's bottom edge
            [100, 100, 390, 390],  # larger than the overlap: cut or whole, never doubled
        ],
        np.float32,
    )
    make, calls = _fake_detector(faces)
    boxes, scores, landmarks = detection_tiles.detect_on_tiles(make(image), image, 400, 100)
    assert {w for _, _, w, _ in calls} == {400} and len(calls) == 3 * 2
    merged = detection_tiles.add_new_faces(
        (np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2))), (boxes, scores, landmarks)
    )
    found = sorted(map(tuple, merged[0].tolist()))
    assert found == sorted(map(tuple, faces.tolist()))
    np.testing.assert_allclose(merged[2][:, 0], (merged[0][:, :2] + merged[0][:, 2:]) / 2)


def test_new_faces_never_replace_the_first_pass():
    kept = (np.array([[0, 0, 100, 100]], np.float32), np.array([0.95]), np.zeros((1, 5, 2)))
    extra = (
        np.array([[5, 5, 98, 102], [20, 20, 50, 50], [200, 0, 240, 40], [202, 2, 240, 42]]),
        np.array([0.99, 0.999, 0.97, 0.98]),
        np.arange(40, dtype=np.float32).reshape(4, 5, 2),
    )
    boxes, scores, landmarks = detection_tiles.add_new_faces(kept, extra)
    # The same face again and a part of it are dropped; of two boxes of one new face the
    # higher-scoring one is added; the result is sorted by score.
    np.testing.assert_array_equal(boxes, [[202, 2, 240, 42], [0, 0, 100, 100]])
    np.testing.assert_allclose(scores, [0.98, 0.95])
    np.testing.assert_array_equal(landmarks[0], extra[2][3])
