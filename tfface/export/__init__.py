"""tfface.export: SavedModel with TF Serving signatures, warmup records, threshold calibration;
ONNX and LiteRT files (float32, float16, int8) and `PortableModel` to run them.

Names load on first access, so `python -m tfface.export` checks its flags before
TensorFlow starts.
"""

from tfface._lazy import lazy_getattr

_EXPORTS = {
    "Calibration": "threshold",
    "CalibrationCrops": "calibration_crops",
    "PortableModel": "portable_model",
    "build_warmup_requests": "warmup",
    "calibrate": "threshold",
    "existing_versions": "layout",
    "export_litert": "portable_export",
    "export_onnx": "portable_export",
    "export_gallery_model": "gallery_model",
    "export_saved_model": "saved_model",
    "read_portable_metadata": "portable_model",
    "read_warmup_requests": "warmup",
    "write_warmup_requests": "warmup",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
