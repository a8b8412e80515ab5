"""tfface.export: SavedModel with TF Serving signatures, warmup records, threshold calibration.

Names load on first access, so `python -m tfface.export` checks its flags before
TensorFlow starts.
"""

import importlib

_EXPORTS = {
    "Calibration": "threshold",
    "build_warmup_requests": "warmup",
    "calibrate": "threshold",
    "existing_versions": "saved_model",
    "export_gallery_model": "gallery_model",
    "export_saved_model": "saved_model",
    "read_warmup_requests": "warmup",
    "write_warmup_requests": "warmup",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"tfface.export.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tfface.export' has no attribute {name!r}")
