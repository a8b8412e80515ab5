"""`Recognizer`: photo → faces (box, landmarks, aligned crop, embedding) → verify / identify.

The detector, the aligner and the model agree by construction: crops are cut at the
model's own size on the model's own template (`FaceModel`, from the model's metadata).
"""

import math

import numpy as np
from PIL import Image

from tfface.align.align_face import align_dlib
from tfface.align.align_face import warp_affine
from tfface.align.face_detector import FaceDetector
from tfface.align.similarity import estimate_similarity
from tfface.align.similarity import transform_points
from tfface.recognition.detection_tiles import add_new_faces
from tfface.recognition.detection_tiles import detect_on_tiles
from tfface.recognition.face import UNKNOWN
from tfface.recognition.face import Face
from tfface.recognition.face import Identification
from tfface.recognition.face import MultipleFacesError
from tfface.recognition.face import NoFaceError
from tfface.recognition.face import Verification
from tfface.recognition.face_model import DEFAULT_MODEL
from tfface.recognition.face_model import FaceModel
from tfface.recognition.image_input import describe
from tfface.recognition.image_input import load_image

POLICIES = ("largest", "single")
# MTCNN's P-Net window: smaller images cannot hold a detectable face.
_MIN_DETECT_SIDE = 12
# Faces this many times `min_face_size` in the downscaled copy are left to the downscaled
# pass; the full-resolution tiles overlap by the photo size of that face, so every smaller
# face lies whole in one tile.
_RELIABLE_FACE_FACTOR = 3


def _warp_region(image, matrix, size):
    """`warp_affine(image, matrix, size)`, reading only the part of `image` the crop covers.

    PIL copies the whole source image for every warp: 114 ms per face on a 4096×4096 photo
    against ~1 ms here (BENCHMARKS.md, recognition latency). The crop's corners mapped back
    into the image, plus a 2-pixel margin for bilinear sampling, bound the region; pixels
    outside the image stay 0 either way, so the result is the same.
    """
    height, width = image.shape[:2]
    corners = np.array([[-1, -1], [size, -1], [-1, size], [size, size]], np.float64)
    back = transform_points(np.linalg.inv(matrix), corners)
    x0, y0 = np.maximum(np.floor(back.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(back.max(axis=0)).astype(int) + 3, [width, height])
    if x0 >= x1 or y0 >= y1:
        return np.zeros((size, size, 3), np.uint8)
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    return warp_affine(image[y0:y1, x0:x1], matrix @ shift, size)


class Recognizer:
    """Detects, aligns, embeds, verifies and identifies faces in photos.

    Args:
        model: a `FaceModel`, or anything `FaceModel` loads: a tfface SavedModel directory,
            a `.keras` file, a pretrained name (default `"dlib_resnet_v1"`) or a
            `keras.Model`. `None` gives a detection-only recognizer: `faces` returns
            boxes, scores, landmarks and quality with `crop` and `embedding` None.
        detector: a `tfface.align.FaceDetector` (default: MTCNN with min_face_size=20).
        min_confidence: detections scoring below this are not faces.
        threshold: 1:1 cosine threshold for `verify`; default the model's calibrated one.
        identify_threshold: open-set threshold for `identify` (best similarity below it →
            "unknown"); default `threshold`'s value. A 1:N threshold should be calibrated at
            a target FPIR on the gallery's size (`tfface.eval`): the 1:1 threshold accepts
            more impostors as the gallery grows.
        max_detect_side: images whose longer side exceeds this are downscaled for
            detection only (boxes and landmarks are mapped back, crops are cut from the
            full-resolution image), bounding the detector's memory on huge photos.
        detect_tiles: for images past `max_detect_side`, also detect on overlapping
            full-resolution tiles of at most `max_detect_side` px, which find the faces
            the downscaled copy makes too small (`tfface.recognition.detection_tiles`);
            the faces of the downscaled pass are kept as they are. Detection time then
            grows with the photo's area. False: the downscaled pass only.

    Defined results for awkward inputs (never an exception from inside TensorFlow):
        - no face: `faces` returns []; single-face calls raise `NoFaceError`.
        - several faces: `faces` returns all (highest score first); single-face calls use
          the largest (`policy="largest"`) or raise `MultipleFacesError` naming the count
          (`policy="single"`).
        - a tiny face: faces smaller than `detector.min_face_size` px are not detected;
          smaller detected faces are returned with `quality["face_size_px"]` so callers can
          drop them. Images under 12 px on a side have no face.
        - grayscale, palette, CMYK, RGBA, 16-bit images: converted to RGB
          (`tfface.recognition.load_image`); undecodable input raises `ImageInputError`
          (a ValueError) naming it.
        - huge images: see `max_detect_side` and `detect_tiles`.

    Example:
    ```python
    recognizer = Recognizer("models/faces")          # SavedModel, .keras or pretrained name
    for face in recognizer.faces("group.jpg"):
        print(face.box, face.quality)
    recognizer.verify("a.jpg", "b.jpg").same_person
    gallery = tfface.gallery.Gallery.open("people.gallery",
                                          model_info=recognizer.model.model_info())
    for result in recognizer.identify("group.jpg", gallery, k=5):
        print(result.identity, result.similarity)
    ```
    """

    def __init__(
        self,
        model=DEFAULT_MODEL,
        detector=None,
        *,
        min_confidence=0.9,
        threshold=None,
        identify_threshold=None,
        max_detect_side=1600,
        detect_tiles=True,
    ):
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(
                f"`min_confidence` must be in [0, 1]. Received: min_confidence={min_confidence}"
            )
        if int(max_detect_side) < 64:
            raise ValueError(
                f"`max_detect_side` must be >= 64. Received: max_detect_side={max_detect_side}"
            )
        for arg, value in (("threshold", threshold), ("identify_threshold", identify_threshold)):
            if value is not None and not -1.0 <= float(value) <= 1.0:
                raise ValueError(f"`{arg}` must be in [-1, 1]. Received: {arg}={value}")
        if model is not None and not isinstance(model, FaceModel):
            model = FaceModel(model)
        self.model = model
        self.detector = detector or FaceDetector()
        self.min_confidence = float(min_confidence)
        self.max_detect_side = int(max_detect_side)
        self.detect_tiles = bool(detect_tiles)
        if threshold is None and model is not None:
            threshold = model.threshold
        self.threshold = None if threshold is None else float(threshold)
        self.identify_threshold = (
            self.threshold if identify_threshold is None else float(identify_threshold)
        )

    # --- stages (public so callers and benchmarks can time them) -------------------------
    def detect(self, image):
        """(boxes [N, 4], scores [N], landmarks [N, 5, 2]) of confident faces in a uint8 RGB
        array, in its own pixels, highest score first; images past `max_detect_side` are
        downscaled first, then (`detect_tiles`) searched on full-resolution tiles."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_detect_side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        boxes, scores, landmarks = self._detect_confident(small)
        if scale == 1.0:
            return boxes, scores, landmarks
        # Pixel centres at integer coordinates: p_big = (p_small + 0.5) / s - 0.5.
        sx, sy = small.shape[1] / width, small.shape[0] / height
        factor = np.array([sx, sy], np.float32)
        boxes = ((boxes.reshape(-1, 2, 2) + 0.5) / factor - 0.5).reshape(-1, 4)
        landmarks = (landmarks + 0.5) / factor - 0.5
        if not self.detect_tiles:
            return boxes, scores, landmarks
        reliable = _RELIABLE_FACE_FACTOR * self.detector.min_face_size / scale
        overlap = min(math.ceil(reliable), self.max_detect_side // 2)
        tiles = detect_on_tiles(self._detect_confident, image, self.max_detect_side, overlap)
        return add_new_faces((boxes, scores, landmarks), tiles)

    def _detect_confident(self, image):
        if min(image.shape[:2]) < _MIN_DETECT_SIDE:
            return (
                np.zeros((0, 4), np.float32),
                np.zeros((0,), np.float32),
                np.zeros((0, 5, 2), np.float32),
            )
        boxes, scores, landmarks = self.detector.detect(image)
        keep = scores >= self.min_confidence
        return boxes[keep], scores[keep], landmarks[keep]

    def align(self, image, landmarks):
        """uint8 [N, S, S, 3] crops on the model's template at its size."""
        size = self.model.image_size
        crops = np.zeros((len(landmarks), size, size, 3), np.uint8)
        for i, points in enumerate(landmarks):
            if self.model.template_name == "dlib":
                # dlib's own alignment: its 5-point predictor, then its face chip.
                crops[i] = align_dlib(image, points, size)
                continue
            matrix = estimate_similarity(points, self.model.template)
            crops[i] = _warp_region(image, matrix, size)
        return crops

    def embed(self, crops):
        """Unit embeddings [N, D] of aligned crops (see `FaceModel.embed`)."""
        if self.model is None:
            raise ValueError("This Recognizer was built with model=None (detection only).")
        return self.model.embed(crops)

    represent = embed

    # --- one call ----------------------------------------------------------------------
    def faces(self, image):
        """Every confident face of `image` (path, bytes, PIL image or array), highest score
        first, each a `Face` with box, score, landmarks, aligned crop, unit embedding and
        quality. [] when there is none."""
        image = load_image(image)
        boxes, scores, landmarks = self.detect(image)
        if self.model is None:
            crops = embeddings = [None] * len(boxes)
        else:
            crops = self.align(image, landmarks)
            embeddings, scores_of_model = [], {}
            if len(crops):
                embeddings, scores_of_model = self.model.embed_with_quality(crops)
        faces = []
        for i in range(len(boxes)):
            w, h = boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]
            quality = {
                "detector_score": float(scores[i]),
                "face_size_px": float(min(w, h)),
                "interocular_px": float(np.linalg.norm(landmarks[i, 1] - landmarks[i, 0])),
            }
            if self.model is not None:
                # The model's own scores (AdaFace/MagFace: embedding_norm); none are faked.
                quality.update({k: float(v[i]) for k, v in scores_of_model.items()})
            faces.append(
                Face(boxes[i], float(scores[i]), landmarks[i], crops[i], embeddings[i], quality)
            )
        return faces

    def face(self, image, policy="largest"):
        """The one face of a single-face photo (see the class docstring for `policy`)."""
        if policy not in POLICIES:
            raise ValueError(f"`policy` must be one of {POLICIES}. Received: policy={policy!r}")
        faces = self.faces(image)
        if not faces:
            raise NoFaceError(
                f"{describe(image)}: no face found (detector confidence >= "
                f"{self.min_confidence}, faces >= {self.detector.min_face_size} px)."
            )
        if len(faces) > 1 and policy == "single":
            raise MultipleFacesError(
                f"{describe(image)}: {len(faces)} faces found, policy='single' wants exactly "
                "one (use policy='largest' to take the largest).",
                count=len(faces),
            )
        return max(faces, key=lambda f: f.area)

    def _embedding_of(self, item, aligned, policy):
        if aligned:
            crop = load_image(item)
            return self.embed(crop[None])[0], None
        face = self.face(item, policy=policy)
        return face.embedding, face

    def verify(self, a, b, threshold=None, policy="largest", aligned=False):
        """Are the faces of `a` and `b` the same person?

        Args:
            a, b: photos (path, bytes, PIL, array), or aligned crops when `aligned`.
            threshold: cosine threshold; default the recognizer's (the model's calibrated
                one). With none known, `same_person` is None.
            policy: which face of a multi-face photo ("largest" or "single").
            aligned: inputs are already aligned crops (detection skipped).

        Returns:
            `Verification(similarity, same_person, threshold, face_a, face_b)`.
        """
        threshold = self.threshold if threshold is None else float(threshold)
        ea, fa = self._embedding_of(a, aligned, policy)
        eb, fb = self._embedding_of(b, aligned, policy)
        similarity = float(np.dot(ea, eb))
        same = None if threshold is None else bool(similarity >= threshold)
        return Verification(similarity, same, threshold, fa, fb)

    def _open_gallery(self, gallery):
        if hasattr(gallery, "search"):
            return gallery
        from tfface.gallery import Gallery

        return Gallery.open(gallery, model_info=self.model.model_info(), create=False)

    def search(self, embeddings, gallery, k=5, threshold=None, by="max"):
        """Top-k identities and the open-set decision for each embedding: a list of
        (matches, identity, best similarity, threshold) tuples."""
        threshold = self.identify_threshold if threshold is None else float(threshold)
        if len(embeddings) == 0:
            return []
        results = gallery.search(embeddings, k=k, by=by, model_info=self.model.model_info())
        out = []
        for matches in results:
            best = float(matches[0].similarity) if matches else None
            if not matches or (threshold is not None and best < threshold):
                identity = UNKNOWN
            else:
                identity = matches[0].name
            out.append((list(matches), identity, best, threshold))
        return out

    def identify(self, image, gallery, k=5, threshold=None, by="max"):
        """Who is each face of `image`?

        Args:
            image: a photo (path, bytes, PIL image or array).
            gallery: a `tfface.gallery.Gallery` (or its location); it must have been built
                by this recognizer's model (else `GalleryModelMismatchError`).
            k: matches reported per face.
            threshold: open-set threshold; default `identify_threshold`.
            by: "max" or "mean" over an identity's embeddings (see `Gallery.search`).

        Returns:
            One `Identification` per face (same order as `faces`); [] when no face.
        """
        gallery = self._open_gallery(gallery)
        faces = self.faces(image)
        embeddings = np.stack([f.embedding for f in faces]) if faces else []
        return [
            Identification(face, matches, identity, best, t)
            for face, (matches, identity, best, t) in zip(
                faces, self.search(embeddings, gallery, k, threshold, by), strict=True
            )
        ]
