"""The public API is mechanical: every package lists its names in `__all__`, every listed
name resolves, Keras knows exactly what serialises, and pyproject.toml matches the pins."""

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfface

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# requirements.txt lines that are tools, not runtime dependencies of `import tfface`.
TEST_ONLY = {"pytest", "pytest-xdist", "ruff"}


def _packages():
    names = ["tfface"]
    for info in pkgutil.walk_packages(tfface.__path__, "tfface."):
        if info.ispkg:
            names.append(info.name)
    return sorted(names)


PACKAGES = _packages()


def test_every_subpackage_is_found():
    for name in ("tfface.data", "tfface.export", "tfface.layers", "tfface.losses"):
        assert name in PACKAGES


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_lists_its_names_in_all(name):
    """One style: an `__all__` list of unique strings, and each name resolves."""
    package = importlib.import_module(name)
    names = getattr(package, "__all__", None)
    assert isinstance(names, list), f"{name} has no __all__ list"
    assert all(isinstance(n, str) for n in names)
    assert len(names) == len(set(names)), f"{name}.__all__ lists a name twice"
    for n in names:
        assert getattr(package, n) is not None, f"{name}.{n}"


def _exported_objects():
    for name in PACKAGES:
        package = importlib.import_module(name)
        for n in getattr(package, "__all__", []):
            obj = getattr(package, n)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{name}.{n}", obj


def test_api_paths_resolve_to_the_object():
    """`tfface_export("tfface.x.Y")` names a path that gives back the same object."""
    seen = 0
    for _, obj in _exported_objects():
        path = obj.__dict__.get("_tfface_api_path")
        if path is None:
            continue
        module, _, attr = path.rpartition(".")
        assert getattr(importlib.import_module(module), attr) is obj, path
        seen += 1
    assert seen >= 15  # layers, losses and their functions at least


def test_keras_registers_only_what_serialises():
    """Registered tfface objects are classes with get_config/from_config, or the triplet
    loss functions; every exported class with get_config is registered."""
    registered = {
        k: v for k, v in keras.saving.get_custom_objects().items() if k.startswith("tfface>")
    }
    loss_functions = {
        getattr(tfface.losses, n) for n in tfface.losses.__all__ if n.startswith("triplet_")
    }
    assert len(loss_functions) == 3
    for key, obj in registered.items():
        if inspect.isfunction(obj):
            assert obj in loss_functions, key
        else:
            assert hasattr(obj, "get_config") and hasattr(obj, "from_config"), key
    for path, obj in _exported_objects():
        if "_tfface_api_path" not in obj.__dict__:
            continue
        key = f"tfface>{obj.__name__}"
        should = (inspect.isclass(obj) and hasattr(obj, "get_config")) or obj in loss_functions
        assert (registered.get(key) is obj) == should, path
    assert "tfface>export_saved_model" not in registered


def test_tfface_export_refuses_what_cannot_serialise():
    from tfface.api_export import tfface_export

    with pytest.raises(ValueError, match="no get_config"):
        tfface_export("tfface.x.Plain", serializable=True)(type("Plain", (), {}))
    with pytest.raises(ValueError, match="must start with 'tfface.'"):
        tfface_export("keras.x")


def _requirements():
    pins = {}
    with open(os.path.join(REPO, "requirements.txt")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                name, _, version = line.partition("==")
                pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


def test_pyproject_declares_the_runtime_dependencies_and_one_version():
    """Every runtime pin of requirements.txt is inside a pyproject range, in the base
    dependencies (keras and numpy: `pip install <checkout>` gives working layers, losses and
    models on any Keras backend) or in an extra (`[tf]`: TensorFlow and the TF side; tools
    such as the weight converters), and the version setuptools builds is
    `tfface.__version__`."""
    from packaging.requirements import Requirement
    from setuptools.config.pyprojecttoml import read_configuration

    project = read_configuration(os.path.join(REPO, "pyproject.toml"))["project"]
    extras = project.get("optional-dependencies", {})
    declared = {}
    for spec in project["dependencies"] + [
        s for extra, specs in extras.items() if extra != "test" for s in specs
    ]:
        req = Requirement(spec)
        declared[req.name.lower()] = req
    # The base install is the layers-only one (tests/test_import_layers.py); TensorFlow and
    # the rest of the TF side come with the [tf] extra.
    assert {Requirement(s).name for s in project["dependencies"]} == {"keras", "numpy"}
    assert "tensorflow" in {Requirement(s).name for s in extras["tf"]}
    for name, version in _requirements().items():
        if name in TEST_ONLY:
            continue
        assert name in declared, f"{name} is pinned in requirements.txt but not in pyproject"
        assert declared[name].specifier.contains(version), (name, version, str(declared[name]))
    assert project["version"] == tfface.__version__
    test_extra = {Requirement(s).name for s in extras["test"]}
    assert test_extra == TEST_ONLY


@pytest.mark.slow  # a fresh interpreter importing TensorFlow: ~20-30 s on 2 shared cores
def test_loss_functions_reload_from_keras_files_in_a_fresh_process(tmp_path):
    """`compile(loss=tfface.losses.triplet_hard_loss)` (and the other two) survive `.keras`
    in a process that only imports tfface: same loss on the same batch."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    y = np.repeat(np.arange(4), 4).astype("int32")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    expected = {}
    for name in ("triplet_semihard_loss", "triplet_hard_loss", "triplet_batch_all_loss"):
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
        model.compile(optimizer="sgd", loss=getattr(tfface.losses, name))
        model.save(tmp_path / f"{name}.keras")
        expected[name] = model.evaluate(x, y, batch_size=16, verbose=0)
    script = textwrap.dedent(
        f"""
        import json, numpy as np, keras
        import tfface  # registers the loss functions; no custom_objects
        data = np.load({str(tmp_path / "data.npz")!r})
        out = {{}}
        for name in {sorted(expected)!r}:
            model = keras.saving.load_model({str(tmp_path)!r} + f"/{{name}}.keras")
            assert model.loss is getattr(tfface.losses, name), model.loss
            out[name] = model.evaluate(data["x"], data["y"], batch_size=16, verbose=0)
        print(json.dumps(out))
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    import json

    actual = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-6, err_msg=name)
