"""Umeyama similarity transforms and the ArcFace five-point template."""

import numpy as np

# insightface's 112×112 template, in pixels with pixel centres at integer coordinates (the
# cv2.warpAffine convention): left eye, right eye, nose tip, left and right mouth corners,
# "left" meaning the image's left (the subject's right eye).
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
ARCFACE_TEMPLATE_112.setflags(write=False)


def arcface_template(image_size=112):
    """The ArcFace template scaled to an `image_size`×`image_size` crop.

    Scaling keeps the face filling the same fraction of the crop at every size (insightface's
    `norm_crop` does the same for multiples of 112). Pixel centres sit at integer
    coordinates, so a pixel-centre-preserving scale maps p to (p + 0.5)·s − 0.5.
    """
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"`image_size` must be an int >= 8. Received: image_size={image_size!r}")
    scale = image_size / 112.0
    return (ARCFACE_TEMPLATE_112 + 0.5) * scale - 0.5


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
