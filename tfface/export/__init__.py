"""tfface.export: SavedModel with TF Serving signatures and warmup records."""

from tfface.export.saved_model import existing_versions
from tfface.export.saved_model import export_saved_model
from tfface.export.warmup import build_warmup_requests
from tfface.export.warmup import read_warmup_requests
from tfface.export.warmup import write_warmup_requests

__all__ = [
    "build_warmup_requests",
    "existing_versions",
    "export_saved_model",
    "read_warmup_requests",
    "write_warmup_requests",
]
