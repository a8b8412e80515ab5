"""tfface: face recognition training for TensorFlow 2 / Keras 3.

Importing `tfface` registers every Keras-serializable layer, loss and backbone, so a
`.keras` file saved with tfface objects loads with plain `keras.saving.load_model` in any
process that has imported `tfface`, without `custom_objects`. The heavier subpackages
(`data`, `eval`, `training`, `export`, `align`) load on first attribute access.

tfface's own commands (`python -m tfface…`, the `tfface` script, `train.py`) import this
package before they have checked their arguments, so here it imports nothing heavy: each
command checks its arguments first (a bad one exits 2 in well under a second instead of
after a 5-12 s TensorFlow import), then imports what it needs and, before it reads a
`.keras` file, calls `tfface.models.keras_objects.register_keras_objects()`
(`tfface._startup.starting_command` says which processes are commands).
"""

import importlib
import importlib.util
import os

from tfface import _startup

__version__ = "0.1.0"

if _startup.starting_command():
    # Before anything imports TensorFlow: keep its C++ start-up chatter off the terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
else:
    # layers, losses and models need no TensorFlow: Keras users on JAX or torch import
    # tfface without it (`make test-backends`).
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" and importlib.util.find_spec(
        "tensorflow"
    ):
        _startup.import_tensorflow()
    from tfface.models.keras_objects import register_keras_objects

    register_keras_objects()

_LAZY_SUBPACKAGES = (
    "align",
    "data",
    "eval",
    "export",
    "gallery",
    "layers",
    "losses",
    "models",
    "recognition",
    "training",
    "weights",
)
__all__ = ["__version__", *_LAZY_SUBPACKAGES]


def __getattr__(name):
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"tfface.{name}")
    raise AttributeError(f"module 'tfface' has no attribute {name!r}")
