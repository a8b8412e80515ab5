"""The model-metadata format under its earlier path, `tfface.export.model_metadata`.

The format lives in `tfface.model_metadata` (floor 1: `tfface.models` and
`tfface.recognition` read it too, and sit below export); these names stay importable here
for code written against the earlier path.
"""

from tfface.model_metadata import FORMAT
from tfface.model_metadata import FORMAT_VERSION
from tfface.model_metadata import METADATA_FILE
from tfface.model_metadata import SAVED_MODEL_METADATA_PATH
from tfface.model_metadata import build_metadata
from tfface.model_metadata import check_metadata
from tfface.model_metadata import model_fingerprint
from tfface.model_metadata import model_template
from tfface.model_metadata import read_keras_metadata
from tfface.model_metadata import read_saved_model_metadata
from tfface.model_metadata import template_points
from tfface.model_metadata import weights_fingerprint
from tfface.model_metadata import write_keras_metadata
from tfface.model_metadata import write_saved_model_metadata

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "SAVED_MODEL_METADATA_PATH",
    "build_metadata",
    "check_metadata",
    "model_fingerprint",
    "model_template",
    "read_keras_metadata",
    "read_saved_model_metadata",
    "template_points",
    "weights_fingerprint",
    "write_keras_metadata",
    "write_saved_model_metadata",
]
