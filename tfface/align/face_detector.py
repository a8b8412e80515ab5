"""`FaceDetector`: MTCNN boxes, scores and five landmarks as arrays in tfface's point order."""

import numpy as np
from PIL import Image

from tfface.align.align_face import align_face
from tfface.align.align_face import as_rgb_uint8
from tfface.api_export import tfface_export

# mtcnn's keypoint names in ARCFACE_TEMPLATE_112's order. mtcnn's "left_eye" is the eye
# on the image's left (smaller x), as the template's first point is.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# mtcnn 1.0 sizes its image pyramid as if it started at scale 1 instead of
# 12 / min_face_size, so for min_face_size > 20 its last levels fall below P-Net's 12-pixel
# window and P-Net raises on an empty convolution output (e.g. min_face_size=200 on a 512×512
# image). Detecting faces >= F in an image is the same pyramid as detecting faces >= 20 in
# the image resized by 20 / F, which mtcnn sizes correctly.
_MTCNN_SAFE_MIN_FACE = 20.0
# The input side of each mtcnn 1.0 stage's network (None: P-Net is fully convolutional).
_MTCNN_INPUT_SIDES = {"StagePNet": None, "StageRNet": 24, "StageONet": 48}


@tfface_export("tfface.align.FaceDetector")
class FaceDetector:
    """Face detector with five-point landmarks, wrapping `mtcnn.MTCNN` (weights ship in the
    mtcnn wheel, so nothing is downloaded).

    Args:
        min_face_size: smallest face side in pixels that the image pyramid looks for.
        thresholds: (P-Net, R-Net, O-Net) score thresholds of the three cascade stages.
        scale_factor: image-pyramid step, in (0, 1).
        device: TensorFlow device the networks run on, e.g. "CPU:0" or "GPU:0".

    Call arguments (`detect`):
        image: uint8 RGB image [H, W, 3] (grayscale/RGBA are converted).

    Example:
    >>> import skimage.data
    >>> boxes, scores, landmarks = FaceDetector().detect(skimage.data.astronaut())
    >>> boxes.shape, landmarks.shape
    ((1, 4), (1, 5, 2))

    Reference:
        Zhang et al., "Joint Face Detection and Alignment Using Multitask Cascaded
        Convolutional Networks", IEEE SPL 2016; the `mtcnn` package (ipazc/mtcnn) 1.0.
    """

    def __init__(
        self, min_face_size=20, thresholds=(0.6, 0.7, 0.8), scale_factor=0.709, device="CPU:0"
    ):
        if not isinstance(min_face_size, (int, float)) or min_face_size < 12:
            raise ValueError(
                "`min_face_size` must be a number >= 12 (MTCNN's P-Net window). "
                f"Received: min_face_size={min_face_size!r}"
            )
        thresholds = tuple(float(t) for t in thresholds)
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(
                f"`thresholds` must be three scores in [0, 1]. Received: thresholds={thresholds}"
            )
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(
                f"`scale_factor` must be in (0, 1). Received: scale_factor={scale_factor}"
            )
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor
        self.device = device
        self._mtcnn = None

    def _detector(self):
        if self._mtcnn is None:
            import tensorflow as tf
            from mtcnn import MTCNN

            mtcnn = MTCNN(device=self.device)
            # mtcnn 1.0 calls its three Keras networks eagerly, layer by layer in Python
            # (P-Net once per pyramid level): 2.7× the CPU time of compiled networks on a
            # 512-px portrait, 1.5× on a 1280-px group photo, with identical boxes. Each
            # network becomes one graph for every input it gets: P-Net any image size,
            # R-Net 24-px and O-Net 48-px patches, any number of them.
            for stage in mtcnn.stages:
                size = _MTCNN_INPUT_SIDES[type(stage).__name__]
                spec = tf.TensorSpec([None, size, size, 3], tf.float32)
                stage._model = tf.function(stage.model, input_signature=[spec])
            self._mtcnn = mtcnn
        return self._mtcnn

    def detect(self, image):
        """Detects every face in `image`.

        Returns:
            boxes: float32 [N, 4] as (x1, y1, x2, y2) pixels; scores: float32 [N];
            landmarks: float32 [N, 5, 2] (x, y) in `LANDMARK_NAMES` order. Sorted by
            descending score; N = 0 gives empty arrays of those shapes.
        """
        image = as_rgb_uint8(image)
        height, width = image.shape[:2]
        min_face_size = self.min_face_size
        scale_x = scale_y = 1.0
        if min_face_size > _MTCNN_SAFE_MIN_FACE:
            factor = _MTCNN_SAFE_MIN_FACE / min_face_size
            size = (max(1, round(width * factor)), max(1, round(height * factor)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
            scale_x, scale_y = size[0] / width, size[1] / height
            min_face_size = _MTCNN_SAFE_MIN_FACE
        rows = self._detector().detect_faces(
            image,
            box_format="xyxy",
            output_type="numpy",
            min_face_size=min_face_size,
            threshold_pnet=self.thresholds[0],
            threshold_rnet=self.thresholds[1],
            threshold_onet=self.thresholds[2],
            scale_factor=self.scale_factor,
        )
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
        # mtcnn's numpy rows: image id, x1, y1, x2, y2, score, then the five x coordinates
        # and the five y coordinates (left eye, right eye, nose, mouth left, mouth right).
        # mtcnn's `to_json` docstring says the pairs are interleaved; its
        # `parse_landmarks` (which produces the JSON keypoints) reads x's then y's.
        order = np.argsort(-rows[:, 5], kind="stable")
        rows = rows[order]
        boxes = rows[:, 1:5].astype(np.float32)
        scores = rows[:, 5].astype(np.float32)
        landmarks = np.stack([rows[:, 6:11], rows[:, 11:16]], axis=-1).astype(np.float32)
        if (scale_x, scale_y) != (1.0, 1.0):
            # Back to the caller's pixels (integer pixel centres, as in align_face).
            scale = np.array([scale_x, scale_y], dtype=np.float32)
            boxes = ((boxes.reshape(-1, 2, 2) + 0.5) / scale - 0.5).reshape(-1, 4)
            landmarks = (landmarks + 0.5) / scale - 0.5
        return boxes, scores, landmarks

    def get_config(self):
        return {
            "min_face_size": self.min_face_size,
            "thresholds": list(self.thresholds),
            "scale_factor": self.scale_factor,
            "device": self.device,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


_DEFAULT_DETECTOR = None


def _default_detector():
    global _DEFAULT_DETECTOR
    if _DEFAULT_DETECTOR is None:
        _DEFAULT_DETECTOR = FaceDetector()
    return _DEFAULT_DETECTOR


def select_face(boxes, scores, min_confidence):
    """Index of the largest box among detections scoring >= `min_confidence`, or None.

    The largest face is the subject in identity-folder photos (facenet's align script also
    prefers the biggest box); bystanders in the background are smaller.
    """
    keep = np.flatnonzero(np.asarray(scores) >= min_confidence)
    if keep.size == 0:
        return None
    areas = (boxes[keep, 2] - boxes[keep, 0]) * (boxes[keep, 3] - boxes[keep, 1])
    return int(keep[np.argmax(areas)])


def detect_and_align(image, image_size=112, min_confidence=0.9, detector=None):
    """Detects faces in `image` and aligns the largest confident one to the ArcFace template.

    Args:
        image: uint8 RGB image [H, W, 3].
        image_size: side S of the aligned crop.
        min_confidence: detections scoring below this are ignored.
        detector: a `FaceDetector`; a shared default one is built on first use.

    Returns:
        A dict with "image" (uint8 [S, S, 3]), "box" [4], "score", "landmarks" [5, 2] and
        "num_faces" (confident detections in the image), or None when no face scores
        >= `min_confidence`; callers decide how to report that.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(
            f"`min_confidence` must be in [0, 1]. Received: min_confidence={min_confidence}"
        )
    detector = detector or _default_detector()
    image = as_rgb_uint8(image)
    boxes, scores, landmarks = detector.detect(image)
    index = select_face(boxes, scores, min_confidence)
    if index is None:
        return None
    return {
        "image": align_face(image, landmarks[index], image_size=image_size),
        "box": boxes[index],
        "score": float(scores[index]),
        "landmarks": landmarks[index],
        "num_faces": int(np.sum(scores >= min_confidence)),
    }
