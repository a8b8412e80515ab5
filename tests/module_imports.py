"""A fresh `python -X importtime -m MODULE ARGS` (or `SCRIPT ARGS`): how a command exited and
what it imported (the CLI tests check that bad arguments exit before TensorFlow loads)."""

import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module, *args, cwd=None, env=None, timeout=300):
    """Runs `python -X importtime -m module *args` with the checkout on PYTHONPATH.

    Args:
        env: variables set on top of this process's environment.

    Returns:
        (returncode, stdout, stderr without the import-time lines, set of the dotted names
        of every module in `sys.modules` at exit).
    """
    return _run(["-m", module, *args], cwd, env, timeout)


def run_script(script, *args, cwd=None, env=None, timeout=300):
    """`run_module` for a script path (e.g. the checkout's train.py)."""
    return _run([str(script), *args], cwd, env, timeout)


# Run at start-up through `sitecustomize`: at exit (sys.exit included) the process writes
# every module in `sys.modules`. `-X importtime` alone misses modules loaded with
# `importlib.import_module` (lazy package names), which bypasses the C import path it times.
_SITECUSTOMIZE = """
import atexit, os, sys


def _write_modules(path=os.environ.get("TFFACE_TEST_MODULES_FILE")):
    if path:
        with open(path, "w") as f:
            f.write("\\n".join(sorted(sys.modules)))


atexit.register(_write_modules)
"""


def _run(command, cwd, env, timeout):
    with tempfile.TemporaryDirectory() as hook:
        with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
            f.write(_SITECUSTOMIZE)
        modules_file = os.path.join(hook, "modules.txt")
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", *command],
            cwd=None if cwd is None else str(cwd),
            env=dict(
                os.environ,
                PYTHONPATH=os.pathsep.join([hook, REPO]),
                TFFACE_TEST_MODULES_FILE=modules_file,
                **(env or {}),
            ),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if not os.path.exists(modules_file):
            raise AssertionError(f"{command} wrote no module list (exit {proc.returncode})")
        with open(modules_file) as f:
            imported = set(f.read().split())
    lines = proc.stderr.splitlines()
    imported |= {x.rsplit("|", 1)[-1].strip() for x in lines if "import time:" in x}
    errors = "\n".join(x for x in lines if "import time:" not in x)
    return proc.returncode, proc.stdout, errors, imported
