"""tfface.weights: the formats of published weight files and where they come from.

`dlib_format` reads dlib's `serialize()` bytes (no dlib needed); `files` finds the files a
pip package installs and the cache their conversions are kept in. A leaf (floor 1):
`tfface.models` converts dlib's face ResNet with it and `tfface.align` reads dlib's shape
predictor with it. NumPy and the standard library only.
"""

from tfface.weights.dlib_format import DlibFormatError
from tfface.weights.files import PretrainedWeightsError
from tfface.weights.files import cache_dir
from tfface.weights.files import file_sha256
from tfface.weights.files import package_file

__all__ = [
    "DlibFormatError",
    "PretrainedWeightsError",
    "cache_dir",
    "file_sha256",
    "package_file",
]
