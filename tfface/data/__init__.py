"""tfface.data: readers, writers, P×K sampling, augmentation and synthetic faces.

`load(spec)` reads `synthetic`, `folder:PATH`, `tfrecord:GLOB|PREFIX`, `rec:PATH` or
`tfds:NAME`; `write(examples, spec)` writes `folder:`, `tfrecord:` or `rec:`, and the spec
written is the spec that reads back. `python -m tfface.data {inspect, convert, synth}`.
"""

from tfface.data.augment import augment
from tfface.data.augment import normalize
from tfface.data.bad_input import BadInputError
from tfface.data.bad_input import BadInputReport
from tfface.data.loader import check_spec
from tfface.data.loader import check_writable
from tfface.data.loader import iter_examples
from tfface.data.loader import load
from tfface.data.loader import write
from tfface.data.sampler import pk_batches
from tfface.data.source import Manifest
from tfface.data.source import Source
from tfface.data.synthetic import SyntheticFaces
from tfface.data.synthetic import SyntheticSource

__all__ = [
    "BadInputError",
    "BadInputReport",
    "Manifest",
    "Source",
    "SyntheticFaces",
    "SyntheticSource",
    "augment",
    "check_spec",
    "check_writable",
    "iter_examples",
    "load",
    "normalize",
    "pk_batches",
    "write",
]
