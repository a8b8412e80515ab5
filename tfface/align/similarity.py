"""Umeyama similarity transforms (the templates live in `tfface.face_templates`)."""

import numpy as np


def estimate_similarity(src_points, dst_points):
    """Least-squares similarity transform (rotation, uniform scale, translation) src → dst.

    Umeyama's closed form: with centred point sets X (src) and Y (dst), the SVD of the
    cross-covariance Σ = YᵀX / n = U D Vᵀ gives R = U S Vᵀ, where S = diag(1, …, det(UVᵀ))
    excludes reflections, scale c = tr(D S) / σ²_X and t = μ_Y − c R μ_X.

    Args:
        src_points: [K, 2] points (e.g. detected landmarks), K >= 2.
        dst_points: [K, 2] target points (e.g. `ARCFACE_TEMPLATE_112`).

    Returns:
        float64 [3, 3] matrix M with dst ≈ M @ [x, y, 1]ᵀ (last row [0, 0, 1]).

    Example:
    >>> m = estimate_similarity([[0, 0], [1, 0]], [[1, 1], [1, 3]])
    >>> np.round(m, 6).tolist()
    [[0.0, -2.0, 1.0], [2.0, 0.0, 1.0], [0.0, 0.0, 1.0]]

    Reference:
        S. Umeyama, "Least-squares estimation of transformation parameters between two
        point patterns", IEEE TPAMI 13(4), 1991.
    """
    src = np.asarray(src_points, dtype=np.float64)
    dst = np.asarray(dst_points, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(
            f"`src_points` must have shape [K, 2] with K >= 2. Received shape {src.shape}"
        )
    if dst.shape != src.shape:
        raise ValueError(
            f"`dst_points` must have the shape of `src_points` {src.shape}. "
            f"Received shape {dst.shape}"
        )
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise ValueError("`src_points` and `dst_points` must be finite.")

    n = src.shape[0]
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = (src_c**2).sum() / n
    if src_var <= 1e-12:
        raise ValueError(
            "`src_points` are all (nearly) the same point, so no transform is defined. "
            f"Received: src_points={src.tolist()}"
        )
    cov = dst_c.T @ src_c / n
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[1, 1] = -1.0
    rotation = u @ s @ vt
    scale = np.trace(np.diag(d) @ s) / src_var
    matrix = np.eye(3)
    matrix[:2, :2] = scale * rotation
    matrix[:2, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def transform_points(matrix, points):
    """Applies a [3, 3] (or [2, 3]) affine `matrix` to [K, 2] `points`."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:2, :2].T + matrix[:2, 2]
