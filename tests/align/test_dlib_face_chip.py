"""dlib_face_chip: dlib's get_face_chip_details + extract_image_chip in NumPy.

Pixel parity with `dlib.get_face_chip` is `make parity-dlib`; here the rules it follows,
checked against independent computations.
"""

import math

import numpy as np
import pytest
from scipy import ndimage

from tfface.align import align_face
from tfface.align.dlib_face_chip import dlib_face_chip
from tfface.align.dlib_face_chip import extract_image_chip
from tfface.align.dlib_face_chip import face_chip_details
from tfface.align.dlib_face_chip import pyramid_down_2
from tfface.face_templates import DLIB_5POINT_MEAN_FACE

CHIP_POINTS_150 = (0.25 + DLIB_5POINT_MEAN_FACE) / 1.5 * 150


def _similar(points, angle_deg, scale, shift):
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return points @ rot.T + shift


def test_chip_details_recover_angle_scale_and_centre():
    parts = _similar(CHIP_POINTS_150, 12.0, 1.7, [40.0, 30.0])
    (left, top, right, bottom), angle = face_chip_details(parts, 150, 0.25)
    assert angle == pytest.approx(np.deg2rad(12.0))
    # centered_drect(p, w, h) spans w − 1: side 150·1.7 − 1.
    assert right - left == pytest.approx(150 * 1.7 - 1) and bottom - top == pytest.approx(254)
    centre = _similar(np.array([[75.0, 75.0]]), 12.0, 1.7, [40.0, 30.0])[0]
    np.testing.assert_allclose([(left + right) / 2, (top + bottom) / 2], centre)


def test_chip_is_bilinear_sampling_of_the_rotated_rect():
    """Chip (c, r) samples the image at tl + c·(tr − tl)/149 + r·(bl − tl)/149 (corners of
    the rect rotated about its centre), bilinearly, truncated to uint8: compared with
    scipy's order-1 `map_coordinates`."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (260, 240, 3), dtype=np.uint8)
    parts = _similar(CHIP_POINTS_150, -8.0, 0.9, [50.0, 60.0])
    chip, to_chip = dlib_face_chip(image, parts, return_matrix=True)
    rect, angle = face_chip_details(parts)
    centre = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2])
    c, s = math.cos(angle), math.sin(angle)

    def corner(x, y):
        return centre + np.array([[c, -s], [s, c]]) @ (np.array([x, y]) - centre)

    tl, tr, bl = corner(rect[0], rect[1]), corner(rect[2], rect[1]), corner(rect[0], rect[3])
    cols, rows = np.meshgrid(np.arange(150.0), np.arange(150.0))
    x = tl[0] + cols * (tr[0] - tl[0]) / 149 + rows * (bl[0] - tl[0]) / 149
    y = tl[1] + cols * (tr[1] - tl[1]) / 149 + rows * (bl[1] - tl[1]) / 149
    ref = np.stack(
        [ndimage.map_coordinates(image[..., k].astype(float), [y, x], order=1) for k in range(3)],
        -1,
    )
    # Exact up to float rounding at integer values (a truncated 37.9999… reads 37).
    assert np.mean(chip == np.floor(ref + 1e-9).astype(np.uint8)) > 0.999
    assert np.abs(chip.astype(int) - np.floor(ref + 1e-9)).max() <= 1
    # The returned image → chip matrix sends those sample points to their chip pixels.
    back = to_chip @ np.stack([x.ravel(), y.ravel(), np.ones(x.size)])
    np.testing.assert_allclose(back[0], cols.ravel(), atol=1e-6)
    np.testing.assert_allclose(back[1], rows.ravel(), atol=1e-6)


def test_outside_the_image_is_black_including_the_last_row_and_column():
    """interpolate_bilinear needs its 2×2 neighbourhood inside: a sample on the last
    column (x = W − 1) is already outside."""
    image = np.full((40, 40, 3), 200, np.uint8)
    chip, _ = extract_image_chip(image, (0.0, 0.0, 39.0, 39.0), 0.0, 40, 40)
    assert np.all(chip[:39, :39] == 200)
    assert np.all(chip[39] == 0) and np.all(chip[:, 39] == 0)
    # The face 60 px off the left edge: the rect spans x = −59.5 … 89.5 and y = 0.5 … 149.5,
    # chip (c, r) samples (c − 59.5, r + 0.5): columns < 60 and the last row are outside.
    parts = _similar(CHIP_POINTS_150, 0.0, 1.0, [-60.0, 0.0])
    chip = dlib_face_chip(np.full((150, 150, 3), 90, np.uint8), parts)
    assert np.all(chip[:, :60] == 0) and np.all(chip[149] == 0)
    assert np.all(chip[:149, 60:] == 90)
    far = _similar(CHIP_POINTS_150, 0.0, 1.0, [-400.0, -300.0])  # wholly outside
    assert not dlib_face_chip(np.full((150, 150, 3), 90, np.uint8), far).any()


def test_pyramid_down_2():
    image = np.full((21, 30, 3), 255, np.uint8)
    down = pyramid_down_2(image)
    # (rows − 3) // 2 × (cols − 3) // 2; [1 4 6 4 1]² / 256 of 255 is 255 exactly.
    assert down.shape == (9, 13, 3) and np.all(down == 255)
    ramp = np.tile(np.arange(30, dtype=np.uint8) * 8, (21, 1))[..., None].repeat(3, -1)
    # Row filter on columns 2c … 2c + 4 of a ramp: its centre, 8·(2c + 2), exactly.
    np.testing.assert_array_equal(pyramid_down_2(ramp)[0, :, 0], 8 * (2 * np.arange(13) + 2))


def test_large_faces_go_through_the_pyramid():
    """A rect over 4× the chip's area is cut from a pyramid_down level: a smooth image gives
    nearly the same chip either way, and the matrix still maps into the original image."""
    y, x = np.mgrid[0:900, 0:900]
    image = np.stack([x // 4, y // 4, (x + y) // 8], -1).astype(np.uint8)
    parts = _similar(CHIP_POINTS_150, 5.0, 4.0, [100.0, 80.0])
    chip, to_chip = dlib_face_chip(image, parts, return_matrix=True)
    centre_image = np.linalg.inv(to_chip) @ [75, 75, 1]
    # Chip pixel (75, 75) shows the image pixel its matrix says (smooth ramps, ±2 levels).
    px, py = np.round(centre_image[:2]).astype(int)
    assert np.abs(chip[75, 75].astype(int) - image[py, px].astype(int)).max() <= 2


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Received shape \(4, 2\)"):
        face_chip_details(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="size"):
        face_chip_details(CHIP_POINTS_150, size=0)
    with pytest.raises(ValueError, match="uint8"):
        dlib_face_chip(np.zeros((10, 10, 3), np.float32), CHIP_POINTS_150)


def test_align_face_dlib_runs_dlibs_alignment():
    """align_face(template="dlib") = predictor on predictor_rect(landmarks), then the chip."""
    import skimage.data

    from tfface.align.dlib_shape_predictor import DlibShapePredictor
    from tfface.align.dlib_shape_predictor import predictor_rect
    from tfface.models import PretrainedWeightsError

    try:
        predictor = DlibShapePredictor.load()
    except PretrainedWeightsError as e:
        pytest.skip(str(e))
    photo = skimage.data.astronaut()
    mtcnn = np.array([[204.0, 100.0], [245.0, 102.0], [224.0, 126.0], [202.0, 139.0], [244, 140]])
    chip, matrix = align_face(photo, mtcnn, 150, return_matrix=True, template="dlib")
    parts = predictor(photo, predictor_rect(mtcnn))
    expected, expected_matrix = dlib_face_chip(photo, parts, 150, 0.25, return_matrix=True)
    np.testing.assert_array_equal(chip, expected)
    np.testing.assert_allclose(matrix, expected_matrix)
    # Shifting photo and landmarks by whole pixels shifts nothing in the chip.
    shifted = np.zeros((530, 540, 3), np.uint8)
    shifted[11:523, 17:529] = photo
    moved = align_face(shifted, mtcnn + [17, 11], 150, template="dlib")
    assert np.abs(moved.astype(int) - chip.astype(int)).mean() < 0.5
    # Grayscale input is converted like every other template.
    gray = align_face(photo[..., 0], mtcnn, 150, template="dlib")
    assert gray.shape == (150, 150, 3)
