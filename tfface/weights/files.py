"""Pretrained weight files: the pip packages that install them, and the cache their
conversions are kept in.

Weights enter tfface from files a pip package installs, never from a download at run
time. `tfface.models.pretrained` converts dlib's face ResNet once and caches the Keras
weights under `cache_dir()` (`$TFFACE_CACHE`, else `$XDG_CACHE_HOME/tfface`, else
`~/.cache/tfface`), keyed by the source file's SHA-256; `tfface.align` reads dlib's
5-point shape predictor from the same package. Standard library only.
"""

import hashlib
import importlib.util
import os

# dlib's models, as the `face-recognition-models` package installs them (CC0 1.0).
DLIB_PACKAGE = "face-recognition-models"
DLIB_PACKAGE_VERSION = "0.3.0"
DLIB_RESNET_FILE = "models/dlib_face_recognition_resnet_model_v1.dat"
DLIB_SHAPE_PREDICTOR_FILE = "models/shape_predictor_5_face_landmarks.dat"


class PretrainedWeightsError(RuntimeError):
    """A pretrained model's weight file is missing or damaged (names package and path)."""


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


def file_sha256(path):
    """Hex SHA-256 of the file at `path` (the key of its cached conversion)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
