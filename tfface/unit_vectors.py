"""`l2_normalize_rows`: the one NumPy row normaliser of eval, gallery, export and recognition.

Callers differ in what a row without a direction is (exactly zero, or below a tolerance)
and in what they do with it (refuse it, naming the rows in their own words, or let it stay
zero), so those are arguments; the arithmetic is the same everywhere: the norm in the
array's own dtype, then one division. NumPy only.
"""

import numpy as np


class ZeroNormError(ValueError):
    """Rows of an array that have no direction; `rows` holds their indices (int64)."""

    def __init__(self, rows):
        self.rows = np.asarray(rows, dtype=np.int64)
        super().__init__(f"rows {self.rows[:10].tolist()} have no direction (zero L2 norm)")


def l2_normalize_rows(x, *, min_norm=0.0, epsilon=None, reject_nonfinite=False):
    """Rows of the [N, D] array `x` divided by their L2 norms, computed in `x`'s dtype.

    Args:
        x: a 2-D float array (cast it first to the dtype the norms should be computed in).
        min_norm: a row whose norm is at most this has no direction and raises
            `ZeroNormError` (the default 0 refuses only all-zero rows).
        epsilon: instead of raising, divide by max(norm, epsilon): rows without a
            direction stay (near) zero.
        reject_nonfinite: also refuse rows whose norm is NaN or inf.

    Raises:
        ZeroNormError: naming the refused rows; callers word the message.

    Example:
    >>> l2_normalize_rows(np.array([[3.0, 4.0]])).tolist()
    [[0.6, 0.8]]
    >>> l2_normalize_rows(np.zeros((1, 2)), epsilon=1e-12).tolist()
    [[0.0, 0.0]]
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if epsilon is not None:
        return x / np.maximum(norms, epsilon)
    refused = norms[:, 0] <= min_norm
    if reject_nonfinite:
        refused |= ~np.isfinite(norms[:, 0])
    if np.any(refused):
        raise ZeroNormError(np.flatnonzero(refused))
    return x / norms
