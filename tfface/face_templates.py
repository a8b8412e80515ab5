"""The five-point alignment templates: ArcFace 112 and dlib's 150 chip, in MTCNN's points.

A model is trained on crops aligned on one template, so its metadata records the template
(`tfface.model_metadata`) and `tfface.align` warps faces onto it. Points are in crop pixels
with pixel centres at integer coordinates, in MTCNN's order: left eye, right eye, nose tip,
left and right mouth corners ("left" meaning the image's left). NumPy only.
"""

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


# dlib's face chip (`get_face_chip_details(shape, 150, 0.25)`, the input of its face
# recognition ResNet) expressed in MTCNN's five points. dlib places a face with its own
# landmarks on its mean face shape (dlib/image_transforms/interpolation.h, coordinates in
# [0, 1] of the face box, padded by 0.25 on each side, at (0.25 + p) / 1.5 · 150 in dlib's
# chip coordinates, which are 0.5 px off the pixel-centre convention used here). dlib's 5-point
# model marks eye corners and the base of the nose, which MTCNN does not find; so the same
# chip is approached by putting MTCNN's points where dlib's mean face has them: the eye
# centres are the means of the six iBUG eye-contour points (36–41, 42–47), the nose tip is
# point 30 and the mouth corners are 48 and 54. These are the "dlib" template points a
# model's metadata records (for consumers that can only warp by five points);
# `tfface.align.align_face(template="dlib")` itself runs dlib's own predictor and chip
# instead (`tfface.align.align_dlib`), as the points alone land up to 0.48 from dlib's descriptors
# (BUILD_NOTES.md, "Alignment ("dlib" template)"). They also place MTCNN's points in the
# predictor's face rectangle
# (`tfface.align.dlib_shape_predictor.MTCNN_POINTS_IN_PREDICTOR_RECT`).
DLIB_MEAN_FACE_MTCNN_POINTS = np.array(
    [
        [np.mean([0.121737, 0.187122, 0.265825, 0.334606, 0.260918, 0.182743]),
         np.mean([0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077])],
        [np.mean([0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335]),
         np.mean([0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099])],
        [0.490127, 0.515625],
        [0.254149, 0.780233],
        [0.726104, 0.780233],
    ],
    dtype=np.float64,
)  # fmt: skip
DLIB_PADDING = 0.25
# dlib's own 5-point template (its shape_predictor_5_face_landmarks order: right-of-image
# eye outer and inner corner, left-of-image eye outer and inner corner, base of the nose),
# for reproducing `dlib.get_face_chip` from dlib's landmarks.
DLIB_5POINT_MEAN_FACE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    dtype=np.float64,
)
DLIB_5POINT_MEAN_FACE.setflags(write=False)


def dlib_template(image_size=150, padding=DLIB_PADDING):
    """dlib's face-chip template in MTCNN's five points, for an `image_size` crop: the points
    recorded in `dlib_resnet_v1`'s metadata and used by `align_face(template=points)`
    (`align_face(template="dlib")` cuts dlib's own chip instead; see `align_dlib`).

    dlib fits a similarity transform from its mean face (in [0, 1]) placed at
    (padding + p) / (1 + 2·padding) · S to the landmarks. In the pixel-centre coordinates
    of `align_face` that point sits 0.5 px up and left: warping dlib's own 5 points onto
    its 5-point template shifted by −0.5 reproduces `dlib.get_face_chip` best (mean
    |pixel difference| 0.9–3.5 on the wheel photos' faces, against 2.7–6.7 unshifted and
    more with a (S − 1) scale; `benchmarks/dlib_alignment.py`). `padding=0.25,
    image_size=150` is the chip `dlib_resnet_v1` expects.
    """
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"`image_size` must be an int >= 8. Received: image_size={image_size!r}")
    if not isinstance(padding, (int, float)) or padding < 0:
        raise ValueError(f"`padding` must be a number >= 0. Received: padding={padding!r}")
    return (padding + DLIB_MEAN_FACE_MTCNN_POINTS) / (2 * padding + 1) * image_size - 0.5


DLIB_TEMPLATE_150 = dlib_template(150)
DLIB_TEMPLATE_150.setflags(write=False)
TEMPLATES = ("arcface", "dlib")


def template_for(name, image_size):
    """Points of the named template ("arcface" or "dlib") for an `image_size` crop."""
    if name == "arcface":
        return arcface_template(image_size)
    if name == "dlib":
        return dlib_template(image_size)
    raise ValueError(f"Unknown template. Expected one of {TEMPLATES}. Received: template={name!r}")


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
