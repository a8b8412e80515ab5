"""The `<export_dir>/<name>/<version>/` layout every tfface export writes, without TensorFlow.

TF Serving polls that layout for SavedModels, and Triton's model repository uses the same
one for `model.onnx`, so SavedModel, ONNX and LiteRT exports share it. This module needs
only the standard library: `python -m tfface.export` checks a version that already exists
before TensorFlow loads.
"""

import numbers
import os
import re
import shutil
import uuid

_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_VERSION_PATTERN = re.compile(r"[0-9]+")


def check_name(name):
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            "`name` must be a model name of letters, digits, '.', '_' or '-' that does not "
            f"start with '.' or '-'. Received: name={name!r}"
        )


def existing_versions(model_dir):
    """Sorted numeric version directories under `model_dir` (what TF Serving would load)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(entry)
        for entry in os.listdir(model_dir)
        if _VERSION_PATTERN.fullmatch(entry) and os.path.isdir(os.path.join(model_dir, entry))
    )


def resolve_version(model_dir, version):
    """`version`, checked; None gives one more than the largest existing version."""
    if version is None:
        return max(existing_versions(model_dir), default=0) + 1
    if isinstance(version, bool) or not isinstance(version, numbers.Integral) or version < 0:
        raise ValueError(
            f"`version` must be a non-negative int (TF Serving version numbers). "
            f"Received: version={version!r}"
        )
    return int(version)


def _exists(final_dir, what):
    error = FileExistsError(
        f"Export version directory {final_dir} {what}; choose another `version` or pass "
        "overwrite=True."
    )
    # The path, for callers that word their own advice (`python -m tfface.export`).
    error.path = final_dir
    return error


def version_dir(export_dir, name, version, overwrite):
    """`<export_dir>/<name>/<version>` (next free version when None); refuses an existing
    one unless `overwrite`, before any expensive work."""
    model_dir = os.path.join(os.fspath(export_dir), name)
    os.makedirs(model_dir, exist_ok=True)
    final_dir = os.path.join(model_dir, str(resolve_version(model_dir, version)))
    if os.path.exists(final_dir) and not overwrite:
        raise _exists(final_dir, "already exists")
    return final_dir


def temporary_dir(final_dir):
    """A new hidden, non-numeric directory beside `final_dir` (TF Serving's poller ignores
    it, and the final rename stays on one filesystem, so it is atomic)."""
    model_dir, version = os.path.split(final_dir)
    tmp_dir = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    os.mkdir(tmp_dir)
    return tmp_dir


def publish(tmp_dir, final_dir, overwrite):
    """Renames the finished `tmp_dir` to `final_dir` (same filesystem, so atomic)."""
    if not os.path.exists(final_dir):
        try:
            os.rename(tmp_dir, final_dir)
        except OSError as e:
            # Another exporter published this version between our check and the rename.
            raise _exists(final_dir, "appeared during export") from e
        return
    if not overwrite:
        raise _exists(final_dir, "already exists")
    # POSIX rename cannot replace a non-empty directory: move the old version aside first.
    # TF Serving may briefly see the version missing, never a partial one.
    parent, base = os.path.split(final_dir)
    old_dir = os.path.join(parent, f".old-{base}-{uuid.uuid4().hex[:8]}")
    os.rename(final_dir, old_dir)
    try:
        os.rename(tmp_dir, final_dir)
    except BaseException:
        os.rename(old_dir, final_dir)
        raise
    shutil.rmtree(old_dir, ignore_errors=True)
