"""Which model a `model` argument names, decided from the filesystem alone (no TensorFlow),
so the CLI can refuse a bad `--model` before TensorFlow loads."""

import os

# The pretrained model a Recognizer uses when none is given.
DEFAULT_MODEL = "dlib_resnet_v1"


class ModelLoadError(ValueError):
    """A model argument that names nothing loadable; the message names it and why."""


def _latest_version_dir(path):
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [
        int(e) for e in os.listdir(path) if e.isdigit() and os.path.isdir(os.path.join(path, e))
    ]
    for version in sorted(versions, reverse=True):
        candidate = os.path.join(path, str(version))
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            return candidate
    return None


def resolve_model_argument(model):
    """Checks a model argument without loading TF; returns ("savedmodel" | "keras" |
    "pretrained", resolved path or name). Raises `ModelLoadError` naming the problem."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if os.path.isdir(path):
            version_dir = _latest_version_dir(path)
            if version_dir is None:
                raise ModelLoadError(
                    f"{path}: directory holds no saved_model.pb (nor numeric version "
                    "directories with one)."
                )
            return "savedmodel", version_dir
        if path.endswith(".keras"):
            if not os.path.isfile(path):
                raise ModelLoadError(f"{path}: no such .keras file.")
            return "keras", path
        if os.sep in path or path.endswith((".h5", ".pb")) or os.path.exists(path):
            raise ModelLoadError(
                f"{path}: not a SavedModel directory or a .keras file"
                + ("" if os.path.exists(path) else " (no such path)")
                + "."
            )
        return "pretrained", path
    raise ModelLoadError(
        "`model` must be a SavedModel directory, a .keras file, a pretrained model name or a "
        f"keras.Model. Received: {type(model).__name__}"
    )
