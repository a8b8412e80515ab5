import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from tfface.align import ARCFACE_TEMPLATE_112
from tfface.align import arcface_template
from tfface.align import estimate_similarity
from tfface.align import transform_points


def _random_similarity(rng):
    angle = rng.uniform(-np.pi, np.pi)
    scale = rng.uniform(0.2, 5.0)
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(3)
    m[:2, :2] = scale * np.array([[c, -s], [s, c]])
    m[:2, 2] = rng.uniform(-300, 300, size=2)
    return m


@pytest.mark.parametrize("seed", range(5))
def test_recovers_a_known_similarity_exactly(seed):
    rng = np.random.default_rng(seed)
    truth = _random_similarity(rng)
    src = rng.uniform(0, 250, size=(5, 2))
    dst = transform_points(truth, src)
    np.testing.assert_allclose(estimate_similarity(src, dst), truth, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_least_squares_fit_matches_skimage_on_noisy_points(seed):
    """With noise the fit is a least-squares compromise; skimage's independent Umeyama
    implementation must agree."""
    rng = np.random.default_rng(100 + seed)
    src = rng.uniform(0, 250, size=(5, 2))
    dst = transform_points(_random_similarity(rng), src) + rng.normal(0, 3.0, size=(5, 2))
    reference = SimilarityTransform.from_estimate(src, dst).params
    np.testing.assert_allclose(estimate_similarity(src, dst), reference, atol=1e-8)


def test_never_returns_a_reflection():
    """A mirrored face (the best fit would flip it) still gets a proper rotation."""
    src = ARCFACE_TEMPLATE_112
    mirrored = src * np.array([-1.0, 1.0])
    m = estimate_similarity(src, mirrored)
    assert np.linalg.det(m[:2, :2]) > 0
    reference = SimilarityTransform.from_estimate(src, mirrored).params
    np.testing.assert_allclose(m, reference, atol=1e-8)


def test_template_scales_with_pixel_centres():
    np.testing.assert_allclose(arcface_template(112), ARCFACE_TEMPLATE_112)
    np.testing.assert_allclose(arcface_template(224), ARCFACE_TEMPLATE_112 * 2 + 0.5)
    with pytest.raises(ValueError, match="Received: image_size=4"):
        arcface_template(4)


@pytest.mark.parametrize(
    "src, dst, match",
    [
        (np.zeros((5, 3)), np.zeros((5, 3)), "shape \\[K, 2\\]"),
        (np.ones((5, 2)), np.ones((4, 2)), "shape of `src_points`"),
        (np.ones((5, 2)), np.ones((5, 2)), "same point"),
        (np.full((5, 2), np.nan), np.ones((5, 2)), "finite"),
    ],
)
def test_bad_points_raise(src, dst, match):
    with pytest.raises(ValueError, match=match):
        estimate_similarity(src, dst)
