"""The dlib 150×150 chip template in MTCNN's points (`tfface.face_templates.dlib_template`,
also `tfface.align.dlib_template`; recorded in model metadata) and
align_face(template=points). align_face(template="dlib") runs dlib's own alignment instead:
`test_align_face_dlib_runs_dlibs_alignment` in tests/align/test_dlib_face_chip.py."""

import numpy as np
import pytest

from tfface.align import DLIB_TEMPLATE_150
from tfface.align import align_face
from tfface.align import arcface_template
from tfface.align import dlib_template
from tfface.align import estimate_similarity
from tfface.align import template_for
from tfface.align import transform_points


def test_template_from_dlibs_mean_face():
    """Eye centre = mean of dlib's six eye-contour points; chip = (0.25 + p) / 1.5 · 150 − 0.5."""
    left_eye_x = np.mean([0.121737, 0.187122, 0.265825, 0.334606, 0.260918, 0.182743])
    assert DLIB_TEMPLATE_150[0, 0] == pytest.approx((0.25 + left_eye_x) / 1.5 * 150 - 0.5)
    assert DLIB_TEMPLATE_150[2].tolist() == pytest.approx(
        [(0.25 + 0.490127) / 1.5 * 150 - 0.5, (0.25 + 0.515625) / 1.5 * 150 - 0.5]
    )
    np.testing.assert_array_equal(dlib_template(150), DLIB_TEMPLATE_150)
    # Left/right symmetric about dlib's face centre line x = 0.490127.
    centre = (0.25 + 0.490127) / 1.5 * 150 - 0.5
    assert DLIB_TEMPLATE_150[0, 0] + DLIB_TEMPLATE_150[1, 0] == pytest.approx(2 * centre, abs=1e-3)
    # No padding: the face box is the whole crop.
    np.testing.assert_allclose(dlib_template(100, padding=0.0)[3], [0.254149 * 100 - 0.5, 77.5233])


def test_template_for_names_and_errors():
    np.testing.assert_array_equal(template_for("arcface", 112), arcface_template(112))
    np.testing.assert_array_equal(template_for("dlib", 150), DLIB_TEMPLATE_150)
    with pytest.raises(ValueError, match="Received: template='vgg'"):
        template_for("vgg", 150)
    with pytest.raises(ValueError, match="padding"):
        dlib_template(150, padding=-1)


def test_align_face_puts_landmarks_on_the_chosen_template():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    # Landmarks: the dlib template rotated by 10°, scaled by 1.3 and moved.
    angle = np.deg2rad(10)
    rot = 1.3 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = DLIB_TEMPLATE_150 @ rot.T + [40.0, 25.0]
    # Template points: a similarity warp putting the landmarks on them.
    crop, matrix = align_face(image, landmarks, 150, return_matrix=True, template=DLIB_TEMPLATE_150)
    assert crop.shape == (150, 150, 3)
    np.testing.assert_allclose(transform_points(matrix, landmarks), DLIB_TEMPLATE_150, atol=1e-9)
    _, arcface = align_face(image, landmarks, 150, return_matrix=True)
    np.testing.assert_allclose(arcface, estimate_similarity(landmarks, arcface_template(150)))
    with pytest.raises(ValueError, match="Received shape \\(4, 2\\)"):
        align_face(image, landmarks, 150, template=np.zeros((4, 2)))
