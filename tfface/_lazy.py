"""Package names that import their module on first access (PEP 562)."""

import importlib


def lazy_getattr(package, exports):
    """A module-level `__getattr__` for `package`: `name` in `exports` (name → submodule)
    is imported from `package.<submodule>` when first accessed.

    Packages whose command-line entry points check their arguments before TensorFlow loads
    (`tfface.data`, `tfface.export`, `tfface.models`, `tfface.recognition`; `tfface.align`
    for its face detector) export their names this way.
    """

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
