"""tfface.export: SavedModel with TF Serving signatures, warmup records, threshold calibration."""

from tfface.export.gallery_model import export_gallery_model
from tfface.export.saved_model import existing_versions
from tfface.export.saved_model import export_saved_model
from tfface.export.threshold import Calibration
from tfface.export.threshold import calibrate
from tfface.export.warmup import build_warmup_requests
from tfface.export.warmup import read_warmup_requests
from tfface.export.warmup import write_warmup_requests

__all__ = [
    "Calibration",
    "build_warmup_requests",
    "calibrate",
    "existing_versions",
    "export_gallery_model",
    "export_saved_model",
    "read_warmup_requests",
    "write_warmup_requests",
]
