"""Quiet TensorFlow's start-up lines (this module must not import TensorFlow).

TF 2.21 writes its start-up lines from C++ static initialisers, before absl logging is
initialised ("WARNING: All log messages before absl::InitializeLog() is called are written
to STDERR"): `TF_CPP_MIN_LOG_LEVEL` does not reach them (measured: levels 2 and 3 both
still print the oneDNN and "Could not find cuda drivers" lines). They go to file
descriptor 2, bypassing `sys.stderr`, so the import is run with fd 2 redirected and every
line that is not one of the known start-up notices is written back afterwards.
`TF_CPP_MIN_LOG_LEVEL=3`, set by the command-line entry points before the import, hides
the later "failed call to cuInit" ERROR line of CPU-only machines.
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
    with filtered_stderr():
        import tensorflow  # noqa: F401
