"""Pretrained face embedders: name → weights source, crop size, template and threshold.

Weights enter tfface models here and nowhere else: each entry converts a published file
that a pip package installs (never a download at run time) into Keras weights once, and
caches them in `tfface.weights.cache_dir()`, keyed by the source file's SHA-256.

`load_pretrained(name)` returns the embedding model (float32 RGB pixels 0–255 →
L2-normalised embeddings) with a `tfface_metadata` dict in `tfface.model_metadata`'s
format (crop size, alignment template, verification threshold), which
`tfface.recognition` and `tfface.export` read.
"""

import dataclasses
import os
import warnings

import keras

from tfface import model_metadata
from tfface.api_export import tfface_export
from tfface.models.embedding_model import build_embedding_model
from tfface.weights.dlib_format import DlibFormatError
from tfface.weights.files import DLIB_PACKAGE
from tfface.weights.files import DLIB_PACKAGE_VERSION
from tfface.weights.files import DLIB_RESNET_FILE
from tfface.weights.files import PretrainedWeightsError
from tfface.weights.files import cache_dir
from tfface.weights.files import file_sha256
from tfface.weights.files import package_file


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

    source = package_file(DLIB_PACKAGE, DLIB_RESNET_FILE, DLIB_PACKAGE_VERSION)
    digest = file_sha256(source)
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
        cache: directory for converted weights (default `tfface.weights.cache_dir()`).

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
        cache: directory for converted weights (default `tfface.weights.cache_dir()`).

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
    spec = get_pretrained_spec(name)
    backbone, digest = _PRETRAINED[name][1](cache)
    model = build_embedding_model(
        backbone, spec.image_size, spec.embedding_dim, normalization=spec.normalization
    )
    if not l2_normalize:
        # The same layers up to the backbone's raw descriptors (`build_embedding_model`'s
        # second output with `return_features`), without the final L2Normalize.
        features = model.get_layer("l2_normalize").input
        model = keras.Model(model.input, features, name=f"{name}_descriptor")
    model.pretrained_spec = spec
    model.tfface_metadata = pretrained_metadata(spec, digest, l2_normalize=l2_normalize)
    return model


def pretrained_metadata(spec, digest, l2_normalize=True):
    """The `tfface.model_metadata` dict of a pretrained model: its crop, template and
    threshold, fingerprinted by the SHA-256 `digest` of its source weights file (so a
    gallery built with `load_pretrained` accepts probes from a `python -m tfface.models
    convert` file made from the same weights).

    Args:
        spec: the model's `PretrainedSpec`.
        digest: hex SHA-256 of the source weights file.
        l2_normalize: False for raw descriptors, which the cosine threshold does not fit.
    """
    return model_metadata.build_metadata(
        name=spec.name,
        image_size=spec.image_size,
        embedding_size=spec.embedding_dim,
        fingerprint=f"sha256:{digest}",
        threshold=spec.threshold if l2_normalize else None,
        template=spec.template,
    )
