"""DlibShapePredictor: reading dlib's shape-predictor format and running its cascade.

Parity with dlib itself (identical integer points) is `make parity-dlib`
(tests/models/test_dlib_parity.py); here: a hand-written predictor whose output follows
from dlib's rules, and the shipped 5-point model's structure.
"""

import numpy as np
import pytest

from tfface.align import estimate_similarity
from tfface.align import transform_points
from tfface.align.dlib_shape_predictor import MTCNN_POINTS_IN_PREDICTOR_RECT
from tfface.align.dlib_shape_predictor import DlibShapePredictor
from tfface.align.dlib_shape_predictor import predictor_rect
from tfface.face_templates import DLIB_5POINT_MEAN_FACE
from tfface.face_templates import DLIB_MEAN_FACE_MTCNN_POINTS
from tfface.models import PretrainedWeightsError
from tfface.weights import files
from tfface.weights.dlib_format import DlibFormatError


def pack_int(value):
    """dlib's `pack_int`: control byte (size | 0x80 if negative), then little-endian bytes."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def pack_float(mantissa, exponent):
    """A float as dlib's `float_details` (value = mantissa · 2^exponent)."""
    return pack_int(mantissa) + pack_int(exponent)


def column(values):
    """`matrix<float,0,1>`: −rows, −1, then each value as (mantissa, exponent)."""
    return pack_int(-len(values)) + pack_int(-1) + b"".join(pack_float(*v) for v in values)


QUARTER, ZERO = (1, -2), (0, 0)


def tiny_predictor_bytes(thresh=(5, 1)):
    """Two parts at (0.25, 0.5) and (0.75, 0.5); one cascade of one depth-1 tree that
    compares the pixels under the two parts: f0 − f1 > thresh (10) moves part 0 right by
    0.25 (left leaf), else part 1 left by 0.25 (right leaf)."""
    half = (1, -1)
    data = pack_int(1) + column([QUARTER, half, (3, -2), half])
    data += pack_int(1) + pack_int(1)  # one cascade, one tree
    data += pack_int(1) + pack_int(0) + pack_int(1) + pack_float(*thresh)  # split 0 vs 1
    data += pack_int(2) + column([QUARTER, ZERO, ZERO, ZERO]) + column([ZERO, ZERO, (-1, -2), ZERO])
    data += pack_int(1) + pack_int(2) + pack_int(0) + pack_int(1)  # anchors
    data += pack_int(1) + pack_int(2) + b"".join(pack_float(*ZERO) for _ in range(4))  # deltas
    return data


def test_tree_walk_and_leaf_sum_follow_dlib():
    predictor = DlibShapePredictor.from_bytes(tiny_predictor_bytes(), "tiny.dat")
    rect = (0, 0, 100, 100)  # part 0 at pixel (25, 50), part 1 at (75, 50)
    image = np.zeros((101, 101, 3), np.uint8)
    image[50, 25] = (10, 20, 31)  # intensity (10 + 20 + 31) // 3 = 20 > 0 + 10: left leaf
    np.testing.assert_array_equal(predictor(image, rect), [[50, 50], [75, 50]])
    image[50, 25] = (10, 20, 30)  # intensity 20, but the other pixel is 11: 9 ≤ 10, right leaf
    image[50, 75] = (11, 11, 11)
    np.testing.assert_array_equal(predictor(image, rect), [[25, 50], [50, 50]])
    # A pixel outside the image reads 0: part 1 off the right edge.
    narrow = np.full((101, 60, 3), 30, np.uint8)
    np.testing.assert_array_equal(predictor(narrow, rect), [[50, 50], [75, 50]])
    # Grayscale images ([H, W] or [H, W, 1]) are their own intensity.
    np.testing.assert_array_equal(predictor(narrow[..., 0], rect), [[50, 50], [75, 50]])
    np.testing.assert_array_equal(predictor(narrow[..., :1], rect), [[50, 50], [75, 50]])


def test_damaged_bytes_name_the_source_and_offset():
    data = tiny_predictor_bytes()
    with pytest.raises(DlibFormatError, match=r"tiny\.dat: .*at byte"):
        DlibShapePredictor.from_bytes(data[:-3], "tiny.dat")
    with pytest.raises(DlibFormatError, match="expected shape_predictor version 1, found 2"):
        DlibShapePredictor.from_bytes(pack_int(2) + data[2:], "tiny.dat")
    with pytest.raises(DlibFormatError, match="unexpected data after"):
        DlibShapePredictor.from_bytes(data + pack_int(7), "tiny.dat")
    with pytest.raises(DlibFormatError, match="invalid integer control byte 0x40"):
        DlibShapePredictor.from_bytes(data[:2] + b"\x40" + data[3:], "tiny.dat")


def test_bad_arguments():
    predictor = DlibShapePredictor.from_bytes(tiny_predictor_bytes())
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="right > left"):
        predictor(image, (10, 0, 5, 10))
    with pytest.raises(ValueError, match="uint8"):
        predictor(image.astype(np.float32), (0, 0, 10, 10))
    with pytest.raises(ValueError, match=r"Received dtype=uint8, shape \(20, 20, 4\)"):
        predictor(np.zeros((20, 20, 4), np.uint8), (0, 0, 10, 10))
    with pytest.raises(ValueError, match=r"Received shape \(4, 2\)"):
        predictor_rect(np.zeros((4, 2)))


@pytest.fixture(scope="module")
def predictor():
    try:
        return DlibShapePredictor.load()
    except PretrainedWeightsError as e:
        pytest.skip(str(e))


def test_shipped_model_structure(predictor):
    assert predictor.num_parts == 5
    assert len(predictor.splits) == len(predictor.leaves) == 15
    index, thresh = predictor.splits[0]
    assert index.shape == (500, 15, 2) and thresh.shape == (500, 15)
    assert predictor.leaves[0].shape == (500, 16, 10)
    assert all(
        len(a) == len(d) == 800 for a, d in zip(predictor.anchors, predictor.deltas, strict=True)
    )
    # Same order as dlib's 5-point mean face (get_face_chip_details): outer/inner corner of
    # the image-right eye, outer/inner corner of the image-left eye, base of the nose.
    shape = predictor.initial_shape.reshape(5, 2)
    assert shape[0, 0] > shape[1, 0] > shape[3, 0] > shape[2, 0]
    assert shape[4, 1] > shape[:4, 1].max()


def test_damaged_file_raises_pretrained_weights_error(tmp_path, predictor):
    source = files.package_file(files.DLIB_PACKAGE, files.DLIB_SHAPE_PREDICTOR_FILE)
    with open(source, "rb") as f:
        head = f.read(100_000)
    damaged = tmp_path / "shape_predictor_5_face_landmarks.dat"
    damaged.write_bytes(head)
    with pytest.raises(PretrainedWeightsError, match="shape_predictor_5_face_landmarks.dat.*"):
        DlibShapePredictor.load(damaged)


def test_mtcnn_points_in_predictor_rect_are_derived_from_the_model(predictor):
    initial = predictor.initial_shape.reshape(5, 2).astype(np.float64)
    to_rect = estimate_similarity(DLIB_5POINT_MEAN_FACE, initial)
    assert np.abs(transform_points(to_rect, DLIB_5POINT_MEAN_FACE) - initial).max() < 0.005
    expected = transform_points(to_rect, DLIB_MEAN_FACE_MTCNN_POINTS)
    np.testing.assert_allclose(MTCNN_POINTS_IN_PREDICTOR_RECT, expected, atol=1e-6)


def test_predictor_rect_is_equivariant():
    points = MTCNN_POINTS_IN_PREDICTOR_RECT * 100 + [30, 40]
    np.testing.assert_allclose(predictor_rect(points), [30, 40, 130, 140], atol=1e-9)
    # Rotating the face keeps the rectangle axis-aligned, centred and of the same side.
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = (points - [80, 90]) @ rot.T + [80, 90]
    np.testing.assert_allclose(predictor_rect(turned), [30, 40, 130, 140], atol=1e-9)


def test_landmarks_on_a_real_face(predictor):
    """On the astronaut, dlib's points sit at MTCNN's eyes (corners either side of the eye
    centre) and between MTCNN's nose tip and mouth."""
    import skimage.data

    mtcnn = np.array([[204.0, 100.0], [245.0, 102.0], [224.0, 126.0], [202.0, 139.0], [244, 140]])
    parts = predictor(skimage.data.astronaut(), predictor_rect(mtcnn))
    assert parts.dtype == np.int64 and parts.shape == (5, 2)
    # Image-right eye: outer corner right of its centre, inner corner left of it.
    assert parts[1, 0] < mtcnn[1, 0] < parts[0, 0]
    assert parts[2, 0] < mtcnn[0, 0] < parts[3, 0]
    assert np.abs(parts[:4, 1] - 101).max() < 8
    assert mtcnn[2, 1] <= parts[4, 1] < mtcnn[3:, 1].mean()
