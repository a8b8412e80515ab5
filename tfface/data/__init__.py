"""tfface.data: readers, writers, P×K sampling, augmentation and synthetic faces.

`load(spec)` reads `synthetic`, `folder:PATH`, `tfrecord:GLOB|PREFIX`, `rec:PATH` or
`tfds:NAME`; `write(examples, spec)` writes `folder:`, `tfrecord:` or `rec:`, and the spec
written is the spec that reads back. `python -m tfface.data {inspect, convert, synth}`.
"""

import sys
import types

from tfface._lazy import lazy_getattr

# Names load on first access, so `python -m tfface.data` checks its flags and specs before
# TensorFlow starts (augment, sampler, synthetic and the readers import it).
_EXPORTS = {
    "BadInputError": "bad_input",
    "BadInputReport": "bad_input",
    "Manifest": "source",
    "Source": "source",
    "SubsetSource": "subset",
    "SyntheticFaces": "synthetic",
    "SyntheticSource": "synthetic",
    "augment": "augment",
    "check_spec": "loader",
    "check_writable": "loader",
    "iter_examples": "loader",
    "load": "loader",
    "normalize": "augment",
    "pk_batches": "sampler",
    "write": "loader",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


class _Package(types.ModuleType):
    # `augment` names both a submodule and its function: importing the submodule (the
    # sampler does) sets `tfface.data.augment` to the module, which `__getattr__` never
    # sees; keep the function, as the eager `from tfface.data.augment import augment` did.
    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
