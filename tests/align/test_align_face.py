import numpy as np
import pytest

from tfface.align import align_face
from tfface.align import arcface_template
from tfface.align.align_face import warp_affine


def _dot_image(points, size=200):
    image = np.zeros((size, size, 3), dtype=np.uint8)
    for x, y in points:
        image[int(y), int(x)] = 255
    return image


def test_warp_uses_integer_pixel_centres():
    """A pure integer translation moves a single bright pixel exactly, with no blur."""
    image = _dot_image([(50, 60)])
    m = np.array([[1.0, 0.0, -20.0], [0.0, 1.0, -7.0], [0.0, 0.0, 1.0]])
    out = warp_affine(image, m, 112)
    ys, xs = np.nonzero(out[:, :, 0])
    assert (xs.tolist(), ys.tolist()) == ([30], [53])
    assert out[53, 30, 0] == 255


def test_warp_maps_points_where_the_matrix_says():
    """Rotation + scale 2: the centroid of a warped 3×3 block lands at M·p."""
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    image[79:82, 99:102] = 255  # centre (100, 80)
    angle = np.deg2rad(30)
    m = np.eye(3)
    m[:2, :2] = 2 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m[:2, 2] = [-60, -150]
    out = warp_affine(image, m, 160)[:, :, 0].astype(np.float64)
    ys, xs = np.mgrid[0:160, 0:160]
    centroid = np.array([(xs * out).sum(), (ys * out).sum()]) / out.sum()
    expected = m[:2, :2] @ [100, 80] + m[:2, 2]
    np.testing.assert_allclose(centroid, expected, atol=0.05)


@pytest.mark.parametrize("size", [112, 96, 160])
def test_landmarks_land_on_the_template(size):
    """Landmarks that are an exact similarity of the template are mapped onto it: bright
    dots drawn at the landmarks show up at the template points of the crop."""
    rng = np.random.default_rng(size)
    angle, scale = rng.uniform(-0.5, 0.5), rng.uniform(1.2, 2.0)
    r = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = np.round(arcface_template(112) @ r.T + [40.0, 30.0])
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    for x, y in landmarks.astype(int):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    crop, matrix = align_face(image, landmarks, image_size=size, return_matrix=True)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    lum = crop[:, :, 0].astype(np.float64)
    for point in arcface_template(size):
        x0, y0 = np.round(point).astype(int)
        window = lum[y0 - 6 : y0 + 7, x0 - 6 : x0 + 7]
        ys, xs = np.mgrid[y0 - 6 : y0 + 7, x0 - 6 : x0 + 7]
        centroid = np.array([(xs * window).sum(), (ys * window).sum()]) / window.sum()
        # Landmarks were rounded to integer pixels: at most ~0.7 px × crop/face scale off.
        assert np.abs(centroid - point).max() < 0.6


def test_grayscale_is_accepted_and_bad_inputs_raise():
    landmarks = arcface_template(112) + 10
    gray = np.full((150, 150), 77, dtype=np.uint8)
    crop = align_face(gray, landmarks)
    assert crop.shape == (112, 112, 3)
    assert crop[56, 56].tolist() == [77, 77, 77]
    with pytest.raises(ValueError, match="uint8.*Received dtype=float32"):
        align_face(gray.astype(np.float32), landmarks)
    with pytest.raises(ValueError, match="Received shape \\(150, 150, 2\\)"):
        align_face(np.zeros((150, 150, 2), np.uint8), landmarks)
    with pytest.raises(ValueError, match="landmarks.*Received shape \\(4, 2\\)"):
        align_face(gray, landmarks[:4])
