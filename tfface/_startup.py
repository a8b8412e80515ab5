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
it. `TF_CPP_MIN_LOG_LEVEL=3`, set by the command-line entry points before the import, hides
TensorFlow's later ERROR lines too.
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


def quiet_command_line():
    """Sets TF_CPP_MIN_LOG_LEVEL=3 (unless set) for `python -m tfface.…` commands."""
    argv = list(getattr(sys, "orig_argv", None) or [])
    module = argv[argv.index("-m") + 1 : argv.index("-m") + 2] if "-m" in argv else []
    if module and module[0].split(".")[0] == "tfface":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
