"""What a face model needs its aligner to know, carried with the model itself.

A model is trained on crops of one size aligned on one five-point template; feeding it
crops of another size or template silently ruins its embeddings (a 150-px dlib model given
112-px ArcFace crops still returns unit vectors). So the crop size, the template, the
calibrated 1:1 threshold and an identity fingerprint travel with the model:

- SavedModel: `<version dir>/assets.extra/tfface_model.json` (written by
  `tfface.export.export_saved_model`; TF Serving ignores `assets.extra` except its warmup
  file).
- `.keras` file: a `tfface_model.json` member added to the zip archive (Keras reads only
  the members it knows, so the file still loads with `keras.saving.load_model`).
- In-memory Keras model: a `tfface_metadata` dict attribute.

The JSON object:

    {"format": "tfface-model", "format_version": 1, "name": str, "image_size": int,
     "template": {"name": str, "points": [[x, y] * 5]}, "threshold": float | null,
     "embedding_size": int, "fingerprint": str, "threshold_source": str,
     "quality_scores": ["embedding_norm"]}   (optional: threshold_source, quality_scores)

`threshold_source` (optional; absent in files written before it existed) says which
faces the threshold was fitted on, e.g. "--eval_data=split: split of folder:photos: 4
held-out identities, 24 images; 120 pairs" for a train.py run on the user's own photos.

`quality_scores` (absent: none) names the face-quality scores the model provides besides
its embeddings. `"embedding_norm"`: the norm ‖x‖ of the backbone features before L2
normalisation, which AdaFace and MagFace training makes a quality score (higher is
better); the SavedModel then has an `embed_quality` signature returning it, and
`tfface.recognition` reports it as `Face.quality["embedding_norm"]`.

`template.points` are in crop pixels (pixel centres at integer coordinates) in the point
order of `tfface.align.FaceDetector` landmarks: left eye, right eye, nose, left and right
mouth corners, "left" meaning the image's left.
"""

import hashlib
import json
import math
import os
import zipfile

import numpy as np

from tfface.face_templates import template_for

METADATA_FILE = "tfface_model.json"
SAVED_MODEL_METADATA_PATH = os.path.join("assets.extra", METADATA_FILE)
FORMAT = "tfface-model"
FORMAT_VERSION = 1
# The quality scores a model can provide (see the module docstring).
QUALITY_SCORES = ("embedding_norm",)


def template_points(template, image_size):
    """[5, 2] float64 template points for an `image_size` crop.

    Args:
        template: a `tfface.align` template name ("arcface": insightface's 112 template
            scaled to the crop; "dlib": dlib's 150 chip), or [5, 2] points in crop pixels.
    """
    if isinstance(template, str):
        return template_for(template, int(image_size))
    points = np.asarray(template, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(
            "`template` must be a template name or finite [5, 2] points (left eye, right eye, "
            "nose, "
            f"left mouth, right mouth) in crop pixels. Received shape {points.shape}"
        )
    if np.any(points < -0.5) or np.any(points > image_size - 0.5):
        raise ValueError(
            f"`template` points must lie inside the {image_size}x{image_size} crop. "
            f"Received: {points.tolist()}"
        )
    return points


def weights_fingerprint(variables):
    """16 hex digits of SHA-256 over the variables' float32 bytes, in order.

    The same weights give the same fingerprint whether they sit in a Keras model
    (`model.variables`) or in a tfface SavedModel (`loaded.model_variables`, exported in
    `model.variables` order), so a gallery can tell which model made its vectors.
    """
    digest = hashlib.sha256()
    for variable in variables:
        value = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
        digest.update(str(value.shape).encode())
        digest.update(np.ascontiguousarray(value.astype(np.float32)).tobytes())
    return digest.hexdigest()[:16]


def model_fingerprint(model):
    """The fingerprint a Keras model carries in its `tfface_metadata` (pretrained models
    fingerprint their source weights file), else `weights_fingerprint(model.variables)`.
    Exports record this value, so a gallery built with the in-memory model accepts probes
    from its SavedModel and the other way round."""
    metadata = getattr(model, "tfface_metadata", None)
    if metadata and metadata.get("fingerprint"):
        return str(metadata["fingerprint"])
    return weights_fingerprint(model.variables)


def model_template(model, default="arcface"):
    """The template ({"name", "points"}) in a Keras model's `tfface_metadata`, else
    `default`."""
    metadata = getattr(model, "tfface_metadata", None)
    template = (metadata or {}).get("template")
    if isinstance(template, dict) and template.get("points") is not None:
        return {"name": str(template.get("name", "custom")), "points": template["points"]}
    return default


def model_quality_scores(model):
    """The quality scores a Keras model provides: its `tfface_quality_scores` attribute
    (set by training with AdaFace/MagFace) or its `tfface_metadata`'s, else ()."""
    scores = getattr(model, "tfface_quality_scores", None)
    if scores is None:
        scores = (getattr(model, "tfface_metadata", None) or {}).get("quality_scores")
    return check_quality_scores(scores or ())


def check_quality_scores(scores):
    """`scores` as a tuple of known quality-score names; raises ValueError otherwise."""
    if isinstance(scores, str) or not all(s in QUALITY_SCORES for s in scores):
        raise ValueError(
            f"`quality_scores` must be a list of {QUALITY_SCORES}. Received: {scores!r}"
        )
    return tuple(dict.fromkeys(scores))


def build_metadata(
    *,
    name,
    image_size,
    embedding_size,
    fingerprint,
    threshold=None,
    template="arcface",
    threshold_source=None,
    quality_scores=(),
):
    """The metadata dict (see the module docstring), checked; `threshold_source` is
    recorded when given, `quality_scores` only when there are some (so a model without
    any has the metadata it had before)."""
    if isinstance(image_size, bool) or int(image_size) != image_size or image_size < 8:
        raise ValueError(f"`image_size` must be an int >= 8. Received: image_size={image_size!r}")
    if threshold is not None:
        threshold = float(threshold)
        if not math.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
            raise ValueError(f"`threshold` must be in [-1, 1]. Received: threshold={threshold}")
    quality_scores = check_quality_scores(quality_scores)
    if isinstance(template, dict):  # {"name", "points"}, as a model's metadata holds it
        template_name, template = template.get("name", "custom"), template["points"]
    else:
        template_name = template if isinstance(template, str) else "custom"
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": str(name),
        "image_size": int(image_size),
        "template": {
            "name": template_name,
            "points": template_points(template, int(image_size)).round(4).tolist(),
        },
        "threshold": threshold,
        "embedding_size": int(embedding_size),
        "fingerprint": None if fingerprint is None else str(fingerprint),
        **({"quality_scores": list(quality_scores)} if quality_scores else {}),
    }
    if threshold_source is not None:
        metadata["threshold_source"] = str(threshold_source)
    return metadata


def check_metadata(metadata, where):
    """Validates a metadata dict read from `where`; returns it with the template as points."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{where}: not a tfface model metadata object.")
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{where}: metadata format_version {metadata['format_version']} is newer than "
            f"this tfface understands ({FORMAT_VERSION}); upgrade tfface."
        )
    try:
        size = int(metadata["image_size"])
        points = template_points(metadata["template"]["points"], size)
        check_quality_scores(metadata.get("quality_scores", ()))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: invalid metadata ({e}).") from e
    out = dict(metadata)
    out["image_size"] = size
    out["template"] = {"name": metadata["template"].get("name", "custom"), "points": points}
    return out


def write_saved_model_metadata(version_dir, metadata):
    path = os.path.join(version_dir, SAVED_MODEL_METADATA_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(metadata, f, indent=2)
    return path


def read_saved_model_metadata(version_dir):
    """The metadata dict of a SavedModel directory, or None when it has none."""
    path = os.path.join(version_dir, SAVED_MODEL_METADATA_PATH)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return check_metadata(json.load(f), path)


def write_keras_metadata(keras_path, metadata):
    """Adds (or replaces) the `tfface_model.json` member of a saved `.keras` archive."""
    with zipfile.ZipFile(keras_path) as zf:
        has_member = METADATA_FILE in zf.namelist()
    if has_member:
        # zipfile cannot replace a member in place: copy the others to a new archive.
        tmp = f"{keras_path}.tmp"
        with zipfile.ZipFile(keras_path) as src, zipfile.ZipFile(tmp, "w") as dst:
            for item in src.infolist():
                if item.filename != METADATA_FILE:
                    dst.writestr(item, src.read(item.filename))
            dst.writestr(METADATA_FILE, json.dumps(metadata, indent=2))
        os.replace(tmp, keras_path)
    else:
        with zipfile.ZipFile(keras_path, "a") as zf:
            zf.writestr(METADATA_FILE, json.dumps(metadata, indent=2))


def read_keras_metadata(keras_path):
    """The metadata dict of a `.keras` archive, or None when it has none."""
    try:
        with zipfile.ZipFile(keras_path) as zf:
            if METADATA_FILE not in zf.namelist():
                return None
            metadata = json.loads(zf.read(METADATA_FILE))
    except zipfile.BadZipFile as e:
        raise ValueError(f"{keras_path}: not a .keras archive ({e}).") from e
    return check_metadata(metadata, f"{keras_path}:{METADATA_FILE}")


def quality_scores_of(source, path):
    """The quality scores of a model named on a command line, from its metadata file alone
    (no TensorFlow): `source`, `path` as `tfface.recognition.model_source.
    resolve_model_argument` returns them. Pretrained models provide none."""
    if source == "savedmodel":
        metadata = read_saved_model_metadata(path)
    elif source == "keras":
        metadata = read_keras_metadata(path)
    else:
        metadata = None
    return tuple((metadata or {}).get("quality_scores", ()))
