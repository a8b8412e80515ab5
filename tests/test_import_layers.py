"""Every import inside `tfface` points down the floors of /work/shared/design.md: a module
imports only from its own floor or below. The imports are read with `ast` (module-level and
function-local, absolute and relative, and `importlib.import_module` of a literal name), so
a lazy import inside a function counts as much as one at the top."""

import ast
import os
import pkgutil

import pytest

import tfface

# The floors, one place. A module's floor is that of the longest entry that is its name or
# a package above it; every module of `tfface` must have one (a new top-level module or
# package is placed here when it is added).
FLOORS = {
    # 1: leaf facts shared by many; NumPy and the standard library only.
    "tfface._lazy": 1,
    "tfface._startup": 1,
    "tfface.api_export": 1,
    "tfface.face_templates": 1,
    "tfface.model_metadata": 1,
    "tfface.unit_vectors": 1,
    "tfface.weights": 1,
    # 2..8: the packages.
    "tfface.data": 2,
    "tfface.layers": 2,
    "tfface.losses": 2,
    "tfface.models": 3,
    "tfface.align": 4,
    "tfface.eval": 4,
    "tfface.export": 5,
    "tfface.gallery": 6,
    "tfface.recognition": 7,
    "tfface.training": 7,
    "tfface.cli": 8,
    "tfface.__main__": 8,
    # The test harness: library code never imports it.
    "tfface.testing": 8,
}
# `tfface/__init__.py` registers the Keras objects of layers, losses and models, so a module
# that imports the package by name (`import tfface`) sits above floor 3.
ROOT_FLOOR = 3


def _modules():
    """{dotted name: source path} of every module of the package, `__init__`s included."""
    root = os.path.dirname(tfface.__file__)
    found = {"tfface": os.path.join(root, "__init__.py")}
    for info in pkgutil.walk_packages(tfface.__path__, "tfface."):
        path = os.path.join(os.path.dirname(root), *info.name.split("."))
        found[info.name] = os.path.join(path, "__init__.py") if info.ispkg else f"{path}.py"
    return found


MODULES = _modules()


def floor_of(name):
    """The floor of module `name` (a `tfface` module name), or None if the table lacks it."""
    if name == "tfface":
        return ROOT_FLOOR
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        floor = FLOORS.get(".".join(parts[:end]))
        if floor is not None:
            return floor
    return None


def imported_modules(name, source, is_package=False, known=MODULES):
    """[(tfface module imported, line)] of the source of module `name`."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                # `from tfface.models import pretrained` imports the submodule.
                sub = f"{module}.{alias.name}"
                found.append((sub if sub in known else module, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.lineno))
    return [(m, line) for m, line in found if m == "tfface" or m.startswith("tfface.")]


def upward_imports(name, source, is_package=False):
    """Lines "A (floor a) imports B (floor b) at line N" for each import of a higher floor."""
    here = floor_of(name)
    out = []
    for target, line in imported_modules(name, source, is_package):
        there = floor_of(target)
        if there is not None and there > here:
            out.append(f"{name} (floor {here}) imports {target} (floor {there}) at line {line}")
    return out


def test_every_module_has_a_floor():
    missing = sorted(name for name in MODULES if floor_of(name) is None)
    assert not missing, f"add these to FLOORS: {missing}"


def test_no_import_points_up():
    upward = []
    for name, path in sorted(MODULES.items()):
        with open(path, encoding="utf-8") as f:
            upward += upward_imports(name, f.read(), is_package=path.endswith("__init__.py"))
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize(
    "name, source, expected",
    [
        (
            "tfface.models.pretrained",
            "from tfface.align import similarity",
            "tfface.align.similarity",
        ),
        ("tfface.models.pretrained", "def f():\n    import tfface.export", "tfface.export"),
        ("tfface.layers.arcface", "from ..gallery import gallery", "tfface.gallery.gallery"),
        (
            "tfface.eval.cli",
            "def f():\n    import tfface.recognition.face",
            "tfface.recognition.face",
        ),
        ("tfface.layers.arcface", "import tfface", "tfface"),
        (
            "tfface.data.loader",
            "importlib.import_module('tfface.training.trainer')",
            "tfface.training.trainer",
        ),
        ("tfface.weights.files", "from tfface import models", "tfface.models"),
    ],
)
def test_an_upward_import_is_found(name, source, expected):
    """The check itself: each of these would fail `test_no_import_points_up`."""
    (found,) = upward_imports(name, source)
    assert f"imports {expected} (floor" in found, found


def test_downward_and_same_floor_imports_pass():
    source = "\n".join(
        [
            "from tfface import model_metadata",
            "from tfface.models import registry",
            "from . import similarity",
            "def f():",
            "    import tfface.eval.pairs",
            "    from tfface.weights.files import package_file",
        ]
    )
    assert upward_imports("tfface.align.align_face", source) == []
    assert sorted(m for m, _ in imported_modules("tfface.align.align_face", source)) == [
        "tfface.align.similarity",
        "tfface.eval.pairs",
        "tfface.model_metadata",
        "tfface.models.registry",
        "tfface.weights.files",
    ]


# --- the layers-only install (issue 17): what `pip install tfface` brings is enough --------
def _module_level_imports(source):
    """Names imported when a module runs: every import statement outside function bodies
    (class bodies and `if` blocks at module level run at import)."""
    found = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and not child.level:
                found.extend(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(source))
    return found


def _third_party_imports(roots):
    """{top-level distribution module: importing tfface module} of everything that importing
    `roots` runs, following tfface's own modules."""
    import sys

    seen, todo, third_party = set(), list(roots), {}
    while todo:
        name = todo.pop()
        if name in seen or name not in MODULES:
            continue
        seen.add(name)
        with open(MODULES[name], encoding="utf-8") as f:
            imported = _module_level_imports(f.read())
        if MODULES[name].endswith("__init__.py") or "." in name:
            # A package's parents run first.
            todo.append(name.rpartition(".")[0])
        for target in imported:
            top = target.split(".")[0]
            if top == "tfface":
                parts = target.split(".")
                # `from tfface.x import y`: y is a module or a name of module tfface.x.
                todo += [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.setdefault(top, name)
    return third_party


def test_the_base_install_is_enough_for_layers_losses_and_models():
    """`pip install tfface` (no extras) must give a working `import tfface.layers`,
    `tfface.losses`, `tfface.models` on any Keras backend: every third-party module they
    import at load time is a base dependency of pyproject.toml (TensorFlow is an extra).
    `make test-backends` proves it by installing that way into TensorFlow-free venvs."""
    from packaging.requirements import Requirement
    from setuptools.config.pyprojecttoml import read_configuration

    root = os.path.dirname(os.path.dirname(os.path.abspath(tfface.__file__)))
    project = read_configuration(os.path.join(root, "pyproject.toml"))["project"]
    base = {Requirement(s).name.lower() for s in project["dependencies"]}
    assert "tensorflow" not in base
    imported = _third_party_imports(["tfface", "tfface.layers", "tfface.losses", "tfface.models"])
    missing = {module: by for module, by in imported.items() if module not in base}
    assert not missing, f"imported at load time but not a base dependency: {missing}"
    assert set(imported) == {"keras", "numpy"}, imported


def test_the_import_walk_sees_module_level_imports_only():
    source = "\n".join(
        [
            "import numpy as np",
            "from PIL import Image",
            "if True:",
            "    import keras",
            "def f():",
            "    import tensorflow",
            "class A:",
            "    import h5py",
        ]
    )
    assert _module_level_imports(source) == ["numpy", "PIL.Image", "keras", "h5py"]
