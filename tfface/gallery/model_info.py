"""Which model built a gallery: the record a gallery keeps, and the check against a probe's.

A gallery's vectors only mean something next to probes from the same model, so every
gallery records `{"name", "version", "embedding_size", "fingerprint"}` when it is created
and every open or search that names a model is checked against it.
"""

import json

# One fingerprint for every model record: the one exports and `tfface.recognition` write,
# so a gallery built from a Keras model accepts probes from its SavedModel.
from tfface.model_metadata import weights_fingerprint  # noqa: F401

MODEL_INFO_KEYS = ("name", "version", "embedding_size", "fingerprint")


class GalleryError(Exception):
    """A gallery cannot do what was asked (unknown identity, name clash, bad URI...)."""


class GalleryNotFoundError(GalleryError):
    """`create=False` and the location holds no gallery."""


class GalleryModelMismatchError(GalleryError):
    """The gallery was built by another model than the one the caller names."""


def normalize_model_info(model_info, *, require_size=True):
    """Checks `model_info` and returns it as a plain dict with the four known keys.

    Args:
        model_info: a mapping with `embedding_size` (int > 0) and optionally `name`,
            `version` and `fingerprint` (strings or None). Other keys are kept as extra
            description but are not compared.
        require_size: raise when `embedding_size` is missing.
    """
    if not isinstance(model_info, dict):
        raise ValueError(f"model_info must be a dict. Received: model_info={model_info!r}")
    info = dict(model_info)
    size = info.get("embedding_size")
    if size is None:
        if require_size:
            raise ValueError(
                f"model_info needs an integer `embedding_size`. Received: model_info={model_info}"
            )
    elif isinstance(size, bool) or int(size) != size or int(size) <= 0:
        raise ValueError(
            f"model_info['embedding_size'] must be a positive integer. Received: {size!r}"
        )
    else:
        info["embedding_size"] = int(size)
    for key in ("name", "version", "fingerprint"):
        if info.get(key) is not None:
            info[key] = str(info[key])
        else:
            info[key] = None
    json.dumps(info)  # a gallery stores it as JSON: fail here, not half-way through a write
    return info


def check_model_info(stored, given, where):
    """Raises `GalleryModelMismatchError` when `given` disagrees with `stored`.

    Only the keys `given` sets (not None) are compared, so `model_info={"embedding_size":
    128}` checks the size alone; a caller that knows its model passes all four.
    """
    if given is None:
        return
    given = normalize_model_info(given, require_size=False)
    diffs = [
        k for k in MODEL_INFO_KEYS if given.get(k) is not None and given.get(k) != stored.get(k)
    ]
    if diffs:
        raise GalleryModelMismatchError(
            f"Gallery {where} was built by model {_describe(stored)}, but the caller's model is "
            f"{_describe(given)} (differs in {', '.join(diffs)}). Probes from one model cannot "
            "be searched in another model's gallery: re-enrol with the new model."
        )


def _describe(info):
    return "{" + ", ".join(f"{k}={info.get(k)!r}" for k in MODEL_INFO_KEYS) + "}"
