"""A fresh `python -X importtime -m MODULE ARGS` (or `SCRIPT ARGS`): how a command exited and
what it imported (the CLI tests check that bad arguments exit before TensorFlow loads)."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module, *args, cwd=None, env=None, timeout=300):
    """Runs `python -X importtime -m module *args` with the checkout on PYTHONPATH.

    Args:
        env: variables set on top of this process's environment.

    Returns:
        (returncode, stdout, stderr without the import-time lines, set of the dotted names
        of every module imported).
    """
    return _run(["-m", module, *args], cwd, env, timeout)


def run_script(script, *args, cwd=None, env=None, timeout=300):
    """`run_module` for a script path (e.g. the checkout's train.py)."""
    return _run([str(script), *args], cwd, env, timeout)


def _run(command, cwd, env, timeout):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *command],
        cwd=None if cwd is None else str(cwd),
        env=dict(os.environ, PYTHONPATH=REPO, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = proc.stderr.splitlines()
    imported = {x.rsplit("|", 1)[-1].strip() for x in lines if "import time:" in x}
    errors = "\n".join(x for x in lines if "import time:" not in x)
    return proc.returncode, proc.stdout, errors, imported
