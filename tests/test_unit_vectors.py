"""`tfface.unit_vectors.l2_normalize_rows` against a loop over the rows, and each option the
callers rely on (eval, gallery, export, recognition)."""

import numpy as np
import pytest

from tfface.unit_vectors import ZeroNormError
from tfface.unit_vectors import l2_normalize_rows


def _reference(x):
    """Row by row: x_i / sqrt(sum_j x_ij²)."""
    out = np.empty_like(x)
    for i, row in enumerate(x):
        out[i] = row / np.sqrt(sum(float(v) ** 2 for v in row))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_are_divided_by_their_norms_in_the_arrays_dtype(dtype):
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(dtype)
    out = l2_normalize_rows(x)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, _reference(x), rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    # The same arithmetic the callers had: one norm, one division.
    np.testing.assert_array_equal(out, x / np.linalg.norm(x, axis=1, keepdims=True))


def test_zero_rows_are_refused_with_their_indices():
    x = np.ones((6, 3))
    x[[1, 4]] = 0.0
    with pytest.raises(ZeroNormError) as info:
        l2_normalize_rows(x)
    assert info.value.rows.tolist() == [1, 4]
    assert isinstance(info.value, ValueError)


def test_min_norm_refuses_rows_at_or_below_it():
    x = np.array([[3.0, 4.0], [0.3, 0.4], [0.03, 0.04]])  # norms 5, 0.5, 0.05
    with pytest.raises(ZeroNormError) as info:
        l2_normalize_rows(x, min_norm=0.5)
    assert info.value.rows.tolist() == [1, 2]
    assert l2_normalize_rows(x, min_norm=np.nextafter(0.05, 0.0)).shape == (3, 2)


def test_epsilon_keeps_zero_rows_zero():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [1e-13, 0.0]], np.float32)
    out = l2_normalize_rows(x, epsilon=1e-12)
    np.testing.assert_array_equal(out, x / np.maximum(np.linalg.norm(x, axis=1)[:, None], 1e-12))
    assert out[0].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(out[1], [0.6, 0.8], rtol=1e-7)
    assert out[2, 0] == pytest.approx(0.1)


def test_nonfinite_norms_are_refused_only_when_asked():
    x = np.array([[1.0, np.nan], [1.0, 0.0], [np.inf, 1.0], [1e200, 1e200]])
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(ZeroNormError) as info:
            l2_normalize_rows(x, reject_nonfinite=True)
        assert info.value.rows.tolist() == [0, 2, 3]  # 1e200² overflows: an infinite norm
        out = l2_normalize_rows(x)  # as the callers that check finiteness first had it
    assert np.isnan(out[0]).all() and out[1].tolist() == [1.0, 0.0]
