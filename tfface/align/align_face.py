"""`align_face`: warp a face so its five landmarks land on the ArcFace template, or cut
dlib's own face chip (`template="dlib"`)."""

import numpy as np
from PIL import Image

from tfface.align.dlib_face_chip import dlib_face_chip
from tfface.align.similarity import estimate_similarity
from tfface.face_templates import DLIB_PADDING
from tfface.face_templates import template_for


def as_rgb_uint8(image, arg="image"):
    """[H, W, 3] uint8 view of `image`; grayscale [H, W] / [H, W, 1] is repeated to RGB and
    RGBA drops its alpha. Anything else raises a `ValueError` naming the shape/dtype."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(
            f"`{arg}` must be a uint8 array with values in 0–255. Received dtype={image.dtype}"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"`{arg}` must have shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]. "
            f"Received shape {image.shape}"
        )
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    elif image.shape[-1] == 4:
        image = image[:, :, :3]
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"`{arg}` is empty. Received shape {image.shape}")
    return np.ascontiguousarray(image)


def warp_affine(image, matrix, image_size):
    """Bilinear warp of `image` by the forward [3, 3] `matrix` into an S×S uint8 crop.

    Coordinates use integer pixel centres (as cv2.warpAffine and the ArcFace template do).
    PIL samples at pixel centres x + 0.5, so the inverse map is shifted by half a pixel
    before it is handed to `Image.transform`. Pixels mapped from outside the image are 0.
    """
    image = as_rgb_uint8(image)
    inverse = np.linalg.inv(np.asarray(matrix, dtype=np.float64))
    a, b, c = inverse[0]
    d, e, f = inverse[1]
    # src_c = A·dst_c + t in centre coordinates  →  in PIL's corner coordinates
    # src = A·dst + t + 0.5 − 0.5·A·(1, 1).
    coeffs = (a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e))
    out = Image.fromarray(image).transform(
        (image_size, image_size), Image.Transform.AFFINE, coeffs, resample=Image.BILINEAR
    )
    return np.asarray(out, dtype=np.uint8)


def align_face(image, landmarks, image_size=112, return_matrix=False, template="arcface"):
    """Aligns one face to a five-point template (ArcFace's by default) with a similarity
    transform.

    Args:
        image: uint8 [H, W, 3] RGB image (grayscale and RGBA are converted).
        landmarks: [5, 2] (x, y) pixel coordinates in the order left eye, right eye, nose,
            left mouth corner, right mouth corner ("left" = the image's left), as returned by
            `FaceDetector`.
        image_size: side S of the square output; the template is scaled to S.
        return_matrix: also return the [3, 3] image → crop transform.
        template: "arcface" (insightface's 112 template; ArcFace-style models), "dlib"
            (dlib's own chip, padding 0.25, for `dlib_resnet_v1`: see `align_dlib`) or
            [5, 2] points in crop pixels.

    Returns:
        uint8 [S, S, 3] aligned face (and the matrix if `return_matrix`).

    Example:
    >>> import skimage.data
    >>> crop = align_face(skimage.data.astronaut(), [[204, 100], [245, 102], [224, 126],
    ...                   [202, 139], [244, 140]])
    >>> crop.shape, crop.dtype
    ((112, 112, 3), dtype('uint8'))
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2):
        raise ValueError(
            f"`landmarks` must have shape [5, 2] (left eye, right eye, nose, left mouth, "
            f"right mouth). Received shape {landmarks.shape}"
        )
    if isinstance(template, str) and template == "dlib":
        aligned, matrix = align_dlib(image, landmarks, image_size, return_matrix=True)
        return (aligned, matrix) if return_matrix else aligned
    if isinstance(template, str):
        points = template_for(template, image_size)
    else:
        points = np.asarray(template, dtype=np.float64)
        if points.shape != (5, 2):
            raise ValueError(
                f"`template` must be 'arcface', 'dlib' or [5, 2] points. Received shape "
                f"{points.shape}"
            )
    matrix = estimate_similarity(landmarks, points)
    aligned = warp_affine(image, matrix, image_size)
    return (aligned, matrix) if return_matrix else aligned


def align_dlib(image, landmarks, image_size=150, return_matrix=False):
    """dlib's face chip from MTCNN's five points, as dlib's own pipeline cuts it.

    dlib aligns with landmarks of its own (eye corners and the base of the nose) from its
    5-point shape predictor, which MTCNN's points cannot stand in for (BUILD_NOTES.md,
    "Alignment"). So: the rectangle the predictor expects is derived from MTCNN's points
    (`predictor_rect`), the predictor (`DlibShapePredictor`, dlib's model, NumPy) finds
    dlib's 5 points in it, and `dlib_face_chip` cuts `get_face_chip(image, shape,
    image_size, 0.25)` pixel for pixel.

    Args:
        image: uint8 [H, W, 3] RGB image (grayscale and RGBA are converted).
        landmarks: [5, 2] MTCNN points (as `align_face`).
        image_size: chip side (150 for `dlib_resnet_v1`).
        return_matrix: also return the [3, 3] image → chip transform.
    """
    from tfface.align.dlib_shape_predictor import DlibShapePredictor
    from tfface.align.dlib_shape_predictor import predictor_rect

    image = as_rgb_uint8(image)
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"`image_size` must be an int >= 8. Received: image_size={image_size!r}")
    parts = DlibShapePredictor.load()(image, predictor_rect(landmarks))
    return dlib_face_chip(image, parts, image_size, DLIB_PADDING, return_matrix=return_matrix)
