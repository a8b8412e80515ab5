"""tfface: face recognition training for TensorFlow 2 / Keras 3.

Importing `tfface` registers every Keras-serializable layer, loss and backbone, so a
`.keras` file saved with tfface objects loads with plain `keras.saving.load_model` in any
process that has imported `tfface`, without `custom_objects`. The heavier subpackages
(`data`, `eval`, `training`, `export`, `align`) load on first attribute access.
"""

import importlib
import importlib.util
import os
import sys

__version__ = "0.1.0"


def _cli_start():
    # `python -m tfface`, the `tfface` script and train.py check their arguments before
    # TensorFlow loads (a bad argument exits 2 in well under a second instead of after a
    # ~5-12 s TF import) and import the subpackages they need themselves
    # (tfface/cli/main.py, train.py).
    argv = list(getattr(sys, "orig_argv", None) or [])
    if "-m" in argv:
        # `python -m tfface.export`, `tfface.data` and `tfface.eval` likewise (their
        # __main__.py / cli.py).
        module = argv[argv.index("-m") + 1 : argv.index("-m") + 2]
        return module in (["tfface"], ["tfface.export"], ["tfface.data"], ["tfface.eval"])
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    # The checkout's own train.py only: another script of that name may rely on the
    # eager imports below (Keras registrations).
    train_py = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train.py")
    return os.path.basename(script) == "tfface" or script == train_py


from tfface import _startup  # noqa: E402

_startup.quiet_command_line()
if not _cli_start():
    # layers, losses and models need no TensorFlow: Keras users on JAX or torch import
    # tfface without it (`make test-backends`).
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" and importlib.util.find_spec(
        "tensorflow"
    ):
        _startup.import_tensorflow()
    from tfface import layers  # noqa: E402,F401
    from tfface import losses  # noqa: E402,F401
    from tfface import models  # noqa: E402,F401

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
)
__all__ = ["__version__", *_LAZY_SUBPACKAGES]


def __getattr__(name):
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"tfface.{name}")
    raise AttributeError(f"module 'tfface' has no attribute {name!r}")
