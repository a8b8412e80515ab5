"""Quiet TensorFlow's start-up lines (this module must not import TensorFlow).

TF 2.21 writes its start-up lines from C++ static initialisers, before absl logging is
initialised ("WARNING: All log messages before absl::InitializeLog() is called are written
to STDERR"): `TF_CPP_MIN_LOG_LEVEL` does not reach them (measured: levels 2 and 3 both
still print the oneDNN and "Could not find cuda drivers" lines). They go to file
descriptor 2, bypassing `sys.stderr`, so the import is run with fd 2 redirected and every
line that is not one of the known start-up notices is written back afterwards.
`TF_CPP_MIN_LOG_LEVEL=3`, set for tfface's commands before the import (`tfface/__init__.py`),
hides the later "failed call to cuInit" ERROR line of CPU-only machines.
"""

import contextlib
import os
import sys
import tempfile

# Start-up notices, each harmless: oneDNN on (numerics note), no CUDA driver, no GPU.
NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
)


# The console script of `[project.scripts]` in pyproject.toml (the same CLI as `-m tfface`).
CONSOLE_SCRIPT = "tfface"


def starting_command():
    """True while this process starts one of tfface's commands, which check their arguments
    before TensorFlow loads and then import what they need themselves.

    A command is `python -m tfface` or `python -m tfface.<anything>` (while Python locates
    a `-m` module it imports the module's parent packages first and `sys.argv[0]` is "-m";
    `sys.orig_argv` names the module), the `tfface` console script, or a script whose
    `__main__` sets `TFFACE_COMMAND = True` before it imports tfface (`train.py`).
    """
    argv = sys.argv or [""]
    if argv[0] == "-m":
        return _module_argument(getattr(sys, "orig_argv", None) or []).split(".")[0] == "tfface"
    if os.path.basename(argv[0]) == CONSOLE_SCRIPT:
        return True
    return getattr(sys.modules.get("__main__"), "TFFACE_COMMAND", False) is True


def _module_argument(orig_argv):
    # The interpreter's own options come before `-m MODULE` (or `-mMODULE`); the program's
    # arguments after it.
    for i, arg in enumerate(orig_argv[1:], start=1):
        if arg == "-m":
            return orig_argv[i + 1] if i + 1 < len(orig_argv) else ""
        if arg.startswith("-m"):
            return arg[2:]
    return ""


@contextlib.contextmanager
def filtered_stderr(noise=NOISE):
    """Drops the `noise` lines written to file descriptor 2 inside the block; the other
    lines are written back (in order) when it ends, even if it raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        saved = None  # no real fd 2 (an embedding host): nothing to filter
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines = tmp.read().decode(errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if not any(n in line for n in noise)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow():
    """Imports TensorFlow without its start-up notices (a no-op once it is imported)."""
    if "tensorflow" in sys.modules:
        return
    with filtered_stderr():
        import tensorflow  # noqa: F401
