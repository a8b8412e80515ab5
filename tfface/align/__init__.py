"""tfface.align: MTCNN face detection and five-point similarity alignment.

`FaceDetector().detect(image)` → boxes, scores, landmarks [N, 5, 2];
`align_face(image, landmarks, image_size=112)` → uint8 crop on the ArcFace template
(`template="dlib"`: dlib's own chip, through `DlibShapePredictor` and `dlib_face_chip`);
`detect_and_align(image)` does both; `python -m tfface.align SRC DST` aligns a dataset.

Alignment is NumPy and PIL; `FaceDetector` and `detect_and_align` (MTCNN, Keras) load on
first access, so `python -m tfface.align` checks its arguments before TensorFlow loads.
"""

from tfface._lazy import lazy_getattr
from tfface.align.align_face import align_dlib
from tfface.align.align_face import align_face
from tfface.align.align_folder import align_folder
from tfface.align.dlib_face_chip import dlib_face_chip
from tfface.align.dlib_shape_predictor import DlibShapePredictor
from tfface.align.dlib_shape_predictor import predictor_rect
from tfface.align.similarity import estimate_similarity
from tfface.align.similarity import transform_points
from tfface.face_templates import ARCFACE_TEMPLATE_112
from tfface.face_templates import DLIB_TEMPLATE_150
from tfface.face_templates import arcface_template
from tfface.face_templates import dlib_template
from tfface.face_templates import template_for

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "DLIB_TEMPLATE_150",
    "DlibShapePredictor",
    "FaceDetector",
    "align_dlib",
    "align_face",
    "align_folder",
    "arcface_template",
    "dlib_template",
    "detect_and_align",
    "dlib_face_chip",
    "estimate_similarity",
    "predictor_rect",
    "template_for",
    "transform_points",
]

__getattr__ = lazy_getattr(
    __name__, {"FaceDetector": "face_detector", "detect_and_align": "face_detector"}
)
