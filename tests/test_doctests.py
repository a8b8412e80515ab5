"""Every `>>>` example in the library runs, so the numbers the docstrings show are true.

The equivalent of `pytest --doctest-modules tfface`, as one test per module, with `np`,
`keras` and `tfface` in scope. Examples that need data the test cannot have (a dataset
path, a trained model) carry `# doctest: +SKIP`; everything else runs.
"""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import tfface


def _modules():
    names = []
    for info in pkgutil.walk_packages(tfface.__path__, "tfface."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


MODULES = _modules()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _import(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and not e.name.startswith("tfface"):
            # Optional backends (requirements-ann.txt, requirements-milvus.txt, ...).
            pytest.skip(f"{name} needs the optional package {e.name!r}")
        raise


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = _import(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    globs = {"np": np, "keras": keras, "tfface": tfface}
    for test in finder.find(module, name, globs=dict(vars(module), **globs)):
        # Only examples written in this module (not ones imported from elsewhere).
        if test.examples and test.name.startswith(name):
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_examples_exist_and_are_collected():
    """The finder sees the examples of the layer, loss and data modules."""
    counts = {}
    for name in ("tfface.losses.triplet_hard_loss", "tfface.models.registry"):
        module = importlib.import_module(name)
        tests = doctest.DocTestFinder().find(module, name)
        counts[name] = sum(len(t.examples) for t in tests if t.name.startswith(name))
    assert all(n >= 2 for n in counts.values()), counts
