"""tfface: face recognition training for TensorFlow 2 / Keras 3.

Importing `tfface` registers every Keras-serializable layer, loss and backbone, so a
`.keras` file saved with tfface objects loads with plain `keras.saving.load_model` in any
process that has imported `tfface`, without `custom_objects`. The heavier subpackages
(`data`, `eval`, `training`, `export`, `align`) load on first attribute access.
"""

import importlib

__version__ = "0.1.0"

from tfface import layers  # noqa: E402,F401
from tfface import losses  # noqa: E402,F401
from tfface import models  # noqa: E402,F401

_LAZY_SUBPACKAGES = ("align", "data", "eval", "export", "training")


def __getattr__(name):
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"tfface.{name}")
    raise AttributeError(f"module 'tfface' has no attribute {name!r}")
