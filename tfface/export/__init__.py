"""tfface.export: SavedModel with TF Serving signatures, warmup records, threshold calibration.

Names load on first access, so `python -m tfface.export` checks its flags before
TensorFlow starts.
"""

from tfface._lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS)
