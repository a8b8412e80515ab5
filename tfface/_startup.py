"""Quiet TensorFlow's start-up lines (this module must not import TensorFlow).

TF 2.21 writes its start-up lines from C++ static initialisers, before absl logging is
initialised ("WARNING: All log messages before absl::InitializeLog() is called are written
to STDERR"): `TF_CPP_MIN_LOG_LEVEL` does not reach them (measured: levels 2 and 3 both
still print the oneDNN and "Could not find cuda drivers" lines). They go to file
descriptor 2, bypassing `sys.stderr`, so the import is run with fd 2 redirected and every
line that is not one of the known start-up notices is written back afterwards.

The CUDA platform starts on first use and logs "failed call to cuInit" at ERROR level on a
machine without a GPU, which `TF_CPP_MIN_LOG_LEVEL=2` does not hide. The import therefore
also lists the physical devices (which starts the platform but not the runtime context, so
devices and threads can still be configured afterwards) inside the filter; that line is
dropped only where no NVIDIA device exists, so a GPU machine whose driver fails still shows
it. `TF_CPP_MIN_LOG_LEVEL=3`, set for tfface's commands before the import (`tfface/__init__.py`),
hides TensorFlow's later ERROR lines too.
"""

import contextlib
import glob
import os
import sys
import tempfile

# Start-up notices, each harmless: oneDNN on (numerics note), CPU instructions TF was not
# built for (two lines), no CUDA driver, and (on a machine without an NVIDIA device) no GPU.
NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "Could not find cuda drivers",
    "failed call to cuInit",
)
_NO_GPU_NOISE = ("failed call to cuInit",)


def _has_nvidia_device():
    return os.path.exists("/proc/driver/nvidia") or bool(glob.glob("/dev/nvidia*"))


def startup_noise():
    """The lines `import_tensorflow` drops on this machine (`NOISE`, keeping the cuInit
    error where an NVIDIA device exists)."""
    if _has_nvidia_device():
        return tuple(n for n in NOISE if n not in _NO_GPU_NOISE)
    return NOISE


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
    with filtered_stderr(startup_noise()):
        import tensorflow

        tensorflow.config.list_physical_devices()
