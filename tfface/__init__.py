"""tfface: face recognition training for TensorFlow 2 / Keras 3.

Importing `tfface` registers every Keras-serializable layer, loss and backbone, so a
`.keras` file saved with tfface objects loads with plain `keras.saving.load_model` in any
process that has imported `tfface`, without `custom_objects`.
"""

__version__ = "0.1.0"

from tfface import layers  # noqa: E402,F401
from tfface import losses  # noqa: E402,F401
from tfface import models  # noqa: E402,F401
