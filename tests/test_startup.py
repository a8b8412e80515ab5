"""`tfface._startup.starting_command`: which processes are tfface's commands (whose parent
`import tfface` imports nothing heavy) and which are user code (where `import tfface`
registers every Keras object)."""

import subprocess
import sys
import types

import pytest

from tests.module_imports import REPO
from tests.module_imports import run_module
from tfface import _startup


@pytest.mark.parametrize(
    "argv0, orig_argv, marker, expected",
    [
        # `python -m X ...` while Python locates X: argv[0] is "-m".
        ("-m", ["python", "-m", "tfface.models", "list"], None, True),
        ("-m", ["python", "-X", "importtime", "-m", "tfface.eval", "-m"], None, True),
        ("-m", ["python", "-mtfface.align", "src"], None, True),
        ("-m", ["python", "-m", "tfface"], None, True),
        ("-m", ["python", "-m", "pytest", "-m", "tfface"], None, False),
        ("-m", ["python", "-m", "tffacex.tool"], None, False),
        # The console script; a script that declares itself a command; user scripts.
        ("/venv/bin/tfface", ["python", "/venv/bin/tfface", "verify"], None, True),
        ("train.py", ["python", "train.py"], True, True),
        ("train.py", ["python", "train.py"], None, False),
        ("my_script.py", ["python", "my_script.py", "-m", "tfface"], None, False),
        ("", ["python"], None, False),
    ],
)
def test_starting_command(monkeypatch, argv0, orig_argv, marker, expected):
    monkeypatch.setattr(sys, "argv", [argv0])
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    main = types.ModuleType("__main__")
    if marker is not None:
        main.TFFACE_COMMAND = marker
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert _startup.starting_command() is expected


def test_a_script_that_declares_itself_a_command_imports_nothing_heavy(tmp_path):
    script = tmp_path / "command.py"
    script.write_text(
        "TFFACE_COMMAND = True\n"
        "import sys\n"
        "import tfface.models\n"
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_user_package_run_with_dash_m_gets_the_keras_objects(tmp_path):
    """`python -m userpkg`, whose package imports tfface: not a tfface command, so
    `import tfface` registers the layers, losses and backbones as in any user code."""
    (tmp_path / "userpkg").mkdir()
    (tmp_path / "userpkg" / "__init__.py").write_text("import tfface  # noqa: F401\n")
    (tmp_path / "userpkg" / "__main__.py").write_text(
        "import keras\n"
        "names = keras.saving.get_custom_objects()\n"
        "print(all(f'tfface>{n}' in names for n in ('ArcFace', 'TripletSemiHardLoss', "
        "'ZeroExtendAdd')))\n"
    )
    code, out, errors, imported = run_module("userpkg", cwd=tmp_path, timeout=300)
    assert code == 0, errors
    assert out.strip() == "True"
    assert "tfface.models.keras_objects" in imported
