"""Pretrained face embedders: name → weights source, crop size, template and threshold.

Weights enter tfface here and nowhere else: each entry converts a published file that a
pip package installs (never a download at run time) into Keras weights once, and caches
them under the user cache directory (`$TFFACE_CACHE`, else `$XDG_CACHE_HOME/tfface`, else
`~/.cache/tfface`), keyed by the source file's SHA-256.

`load_pretrained(name)` returns the embedding model (float32 RGB pixels 0–255 →
L2-normalised embeddings) with a `tfface_metadata` dict in `tfface.export.model_metadata`'s
format (crop size, alignment template, verification threshold), which
`tfface.recognition` and `tfface.export` read.
"""

import dataclasses
import hashlib
import importlib.util
import os
import warnings

import keras

from tfface.api_export import tfface_export

DLIB_PACKAGE = "face-recognition-models"
DLIB_PACKAGE_VERSION = "0.3.0"
DLIB_RESNET_FILE = "models/dlib_face_recognition_resnet_model_v1.dat"
DLIB_SHAPE_PREDICTOR_FILE = "models/shape_predictor_5_face_landmarks.dat"


class PretrainedWeightsError(RuntimeError):
    """A pretrained model's weight file is missing or damaged (names package and path)."""


@dataclasses.dataclass(frozen=True)
class PretrainedSpec:
    """What a pretrained embedder is and how to use it.

    Attributes:
        name: registry name.
        backbone: the `tfface.models` backbone it runs on.
        image_size: crop side S.
        embedding_dim: descriptor size D.
        normalization: `tfface.layers.ImageNormalization` mode of its input.
        template: `tfface.align` template name of its crops.
        threshold: cosine similarity at and above which two faces are the same person.
        distance_threshold: the publisher's threshold on raw-descriptor Euclidean distance.
        package, package_version, path: the pip package that installs the weights and the
            file inside it.
        licence: the weights' licence, as the package states it.
        threshold_note: how `threshold` follows from `distance_threshold`.
        num_blocks: residual blocks of the backbone (the bound of `trainable_blocks`).
    """

    name: str
    backbone: str
    image_size: int
    embedding_dim: int
    normalization: str
    template: str
    threshold: float
    distance_threshold: float
    package: str
    package_version: str
    path: str
    licence: str
    threshold_note: str
    num_blocks: int


_PRETRAINED = {}


def _register(spec, loader):
    if spec.name in _PRETRAINED:
        raise ValueError(f"A pretrained model named {spec.name!r} is already registered.")
    _PRETRAINED[spec.name] = (spec, loader)


def list_pretrained():
    """Sorted names of the pretrained embedders."""
    return sorted(_PRETRAINED)


def get_pretrained_spec(name):
    """The `PretrainedSpec` of `name`; unknown names raise a `ValueError`."""
    if name not in _PRETRAINED:
        raise ValueError(
            f"Unknown pretrained model. Expected one of {list_pretrained()}. "
            f"Received: name={name!r}"
        )
    return _PRETRAINED[name][0]


def cache_dir():
    """The directory converted weights are cached in (created on first use)."""
    path = os.environ.get("TFFACE_CACHE")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "tfface")
    return path


def package_file(package, relative_path, version=None):
    """Absolute path of `relative_path` inside the installed distribution `package`.

    Found without importing the package (face_recognition_models' `__init__` imports
    `pkg_resources`, which recent setuptools no longer ships). Raises
    `PretrainedWeightsError` naming the package and the pip command when it is missing.
    """
    module = package.replace("-", "_")
    install = f"pip install {package}" + (f"=={version}" if version else "")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError(
            f"The pretrained weights come from the {package!r} package, which is not "
            f"installed. Install it with `{install}`."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], relative_path)
    if not os.path.isfile(path):
        raise PretrainedWeightsError(
            f"{path} is missing from the installed {package!r} package. Reinstall it with "
            f"`{install} --force-reinstall`."
        )
    return path


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# === dlib_resnet_v1 ===

# Derived in BUILD_NOTES.md ("dlib_resnet_v1 threshold"): dlib calls two faces the same
# person when ‖a − b‖ < 0.6 on raw descriptors; for unit vectors ‖u − v‖² = 2 − 2·cos, and
# the raw descriptors of real faces have norms r close to each other, so
# ‖a − b‖² ≈ r²(2 − 2·cos) and the cosine threshold is 1 − 0.6² / (2 r²), with r the median
# descriptor norm of real face chips: 1.457 over the 9 faces dlib's own pipeline finds in
# the wheel photos (`benchmarks/dlib_alignment.py`), so 1 − 0.36 / (2 · 1.46²) = 0.9156.
DLIB_MEDIAN_NORM = 1.46
DLIB_THRESHOLD = 1.0 - 0.6**2 / (2 * DLIB_MEDIAN_NORM**2)
_DLIB_CACHE_LAYOUT = "v2"


def _dlib_backbone(cache=None, trainable_blocks=None):
    """The `dlib_resnet_v1` backbone with dlib's weights, converted once and cached."""
    from tfface.models import dlib_resnet
    from tfface.models.dlib_format import DlibFormatError

    source = package_file(DLIB_PACKAGE, DLIB_RESNET_FILE, DLIB_PACKAGE_VERSION)
    digest = _sha256(source)
    model = dlib_resnet.dlib_resnet_v1(trainable_blocks=trainable_blocks)
    # Keras keys a .weights.h5 file's groups by layer class, so the layout tag changes with
    # the network's layer classes (v2: `ChannelAffine`); trees of different versions sharing
    # one cache then keep a file each instead of re-converting each other's.
    name = f"dlib_resnet_v1-{digest[:16]}-{_DLIB_CACHE_LAYOUT}.weights.h5"
    cached = os.path.join(cache or cache_dir(), name)
    if os.path.isfile(cached):
        try:
            model.load_weights(cached)
            return model, digest
        except Exception as e:  # noqa: BLE001 (any unreadable cache file is re-converted)
            warnings.warn(
                f"Re-converting dlib weights: cache file {cached} is unreadable ({e}).",
                stacklevel=3,
            )
    with open(source, "rb") as f:
        data = f.read()
    try:
        weights = dlib_resnet.read_dlib_resnet(data, source)
    except DlibFormatError as e:
        raise PretrainedWeightsError(
            f"{source} (from the {DLIB_PACKAGE!r} package) is damaged or not dlib's face "
            f"recognition ResNet: {e}. Reinstall it with `pip install "
            f"{DLIB_PACKAGE}=={DLIB_PACKAGE_VERSION} --force-reinstall`."
        ) from e
    dlib_resnet.load_dlib_weights(model, weights)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    # Written beside and renamed into place, so a concurrent loader never reads half a file.
    partial = f"{cached}.{os.getpid()}.partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, cached)
    return model, digest


_DLIB_SPEC = PretrainedSpec(
    name="dlib_resnet_v1",
    backbone="dlib_resnet_v1",
    image_size=150,
    embedding_dim=128,
    normalization="dlib",
    template="dlib",
    threshold=DLIB_THRESHOLD,
    distance_threshold=0.6,
    package=DLIB_PACKAGE,
    package_version=DLIB_PACKAGE_VERSION,
    path=DLIB_RESNET_FILE,
    licence=(
        "CC0 1.0 Universal (public domain dedication): the package's LICENSE file; its "
        "metadata says the models 'were created by Davis King and are licensed in the public "
        "domain or under CC0 1.0 Universal' (the package code itself is MIT)"
    ),
    threshold_note=(
        "dlib: same person iff ‖a − b‖ < 0.6 on raw descriptors; cosine threshold "
        "1 − 0.6²/(2 r²) with r the median raw descriptor norm of real face chips"
    ),
    num_blocks=14,
)
_register(_DLIB_SPEC, _dlib_backbone)


@tfface_export("tfface.models.load_pretrained_backbone")
def load_pretrained_backbone(name, trainable_blocks=None, cache=None):
    """The pretrained backbone alone, for fine-tuning (e.g. `train.py --pretrained`).

    Args:
        name: one of `list_pretrained()`.
        trainable_blocks: `None` trains every layer; an int N freezes all but the last N
            residual blocks and the final dense layer (see the backbone's factory, e.g.
            `tfface.models.dlib_resnet.dlib_resnet_v1`).
        cache: directory for converted weights (default `cache_dir()`).

    Returns:
        (backbone, spec): the `keras.Model` mapping images normalised with
        `spec.normalization` ([N, S, S, 3], S = `spec.image_size`) to raw
        `spec.embedding_dim` descriptors, holding the published weights; and its
        `PretrainedSpec`. Wrap it with `tfface.models.build_embedding_model(backbone,
        spec.image_size, spec.embedding_dim, normalization=spec.normalization)`.
    """
    spec = get_pretrained_spec(name)
    backbone, _ = _PRETRAINED[name][1](cache, trainable_blocks)
    return backbone, spec


@tfface_export("tfface.models.load_pretrained")
def load_pretrained(name, l2_normalize=True, cache=None):
    """A pretrained face embedder as a Keras model, ready for `tfface.recognition`/`export`.

    Args:
        name: one of `list_pretrained()`, e.g. "dlib_resnet_v1".
        l2_normalize: True (default) returns unit embeddings, the form `verify`, the
            gallery and export use; False returns the publisher's raw descriptors (dlib's
            Euclidean 0.6 threshold applies to those).
        cache: directory for converted weights (default `cache_dir()`).

    Returns:
        A functional `keras.Model` mapping float32 RGB pixels [N, S, S, 3] in 0–255 to
        [N, D] embeddings, with attributes `tfface_metadata` (dict: name, image_size,
        template {name, points}, threshold, embedding_size, fingerprint) and
        `pretrained_spec` (`PretrainedSpec`).

    Raises:
        PretrainedWeightsError: the weights package is missing or its file is damaged.

    Example:
    ```python
    model = tfface.models.load_pretrained("dlib_resnet_v1")
    crop = tfface.align.align_face(photo, landmarks, image_size=150, template="dlib")
    embedding = model(crop[None].astype("float32"))
    ```
    """
    from tfface.align.similarity import template_for
    from tfface.layers import ImageNormalization
    from tfface.layers import L2Normalize

    spec = get_pretrained_spec(name)
    backbone, digest = _PRETRAINED[name][1](cache)
    inputs = keras.Input((spec.image_size, spec.image_size, 3), dtype="float32", name="pixels")
    x = ImageNormalization(spec.normalization, name="normalization")(inputs)
    x = backbone(x)
    if l2_normalize:
        x = L2Normalize(axis=-1, dtype="float32", name="l2_normalize")(x)
    suffix = "embedding" if l2_normalize else "descriptor"
    model = keras.Model(inputs, x, name=f"{name}_{suffix}")
    model.pretrained_spec = spec
    # The dict format of tfface.export.model_metadata (built here: models sits below export).
    model.tfface_metadata = {
        "format": "tfface-model",
        "format_version": 1,
        "name": name,
        "image_size": spec.image_size,
        "template": {
            "name": spec.template,
            "points": template_for(spec.template, spec.image_size).round(4).tolist(),
        },
        "threshold": spec.threshold if l2_normalize else None,
        "embedding_size": spec.embedding_dim,
        "fingerprint": f"sha256:{digest}",
    }
    return model
