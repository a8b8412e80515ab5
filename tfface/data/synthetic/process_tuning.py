"""The two process-wide settings the synthetic renderer changes, and how to keep them off.

The first `SyntheticFaces.render` of at least one image in a process (directly, or through
`SyntheticSource`, `heldout_images`, `tfface.data.load("synthetic…")`, train.py or
`python -m tfface.data synth`) calls `tune_process_for_rendering`, which changes, for the
rest of the process:

- NumPy's BLAS thread count: limited to one (`threadpoolctl`). Every later NumPy
  matrix product in the process runs on one thread, not only the renderer's.
- glibc's malloc thresholds (`mallopt`, glibc only): freed memory is kept mapped up to a
  trim threshold of 256 MiB, and blocks under 32 MiB come from the heap, not from mmap.

TensorFlow's own thread pools and allocator are not affected, and neither setting changes
a pixel. Both are logged once (INFO, logger `tfface.data.synthetic`). Call
`disable_process_tuning()` before the first render to leave both as they are: renders
are then bit-identical, at 3.0–3.6 times the CPU per batch (untuned 71–79 against
22.0–23.6 CPU-ms per 128-image batch at 64 px, `python benchmarks/render_cost.py`,
BENCHMARKS.md "Trainer input overlap").
"""

import ctypes
import logging
import platform
import threading

import threadpoolctl

logger = logging.getLogger("tfface.data.synthetic")

_lock = threading.Lock()
# None until the process decides: then "tuned" (the first render applied the settings) or
# "disabled" (`disable_process_tuning` came first).
_state = None
# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_process_for_rendering():
    """Applies the process settings the renderer needs to be cheap, once per process.

    `SyntheticFaces.render` calls it before its first image. A no-op once the settings
    are applied, or after `disable_process_tuning()`. Both settings are measured on the
    default run's batches (128 images at 64 px, 2 cores, `benchmarks/render_cost.py`,
    BUILD_NOTES.md "Input overlap"):

    - NumPy's BLAS runs on one thread. The resampling GEMMs are small ([m·R·3, R] × [R, S]):
      a second OpenBLAS thread barely speeds them up, but its worker spins after every
      call and takes a core from the training step (96–130 CPU-ms per batch with 2
      threads, 50–57 with one, 48–55 ms wall either way). The limit stays: switching back
      to 2 threads after each render wakes the workers, which spin again.
    - glibc keeps freed memory mapped (trim threshold 256 MiB, mmap threshold 32 MiB). A
      render allocates and frees ~10 MB of temporaries per 32 images; glibc's adaptive
      thresholds returned them to the OS after each chunk and the next chunk faulted them
      back in: ~9,000–10,000 minor page faults per batch, about half the render's CPU.

    TensorFlow's own thread pools and allocator are not affected. Logged once.
    """
    global _state
    with _lock:
        if _state is not None:
            return
        threadpoolctl.threadpool_limits(limits=1, user_api="blas")
        done = ["NumPy's BLAS limited to 1 thread"]
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
        if mallopt is not None and platform.libc_ver()[0] == "glibc":
            if mallopt(_M_TRIM_THRESHOLD, 256 << 20) and mallopt(_M_MMAP_THRESHOLD, 32 << 20):
                done.append("glibc trim/mmap thresholds 256/32 MiB")
        _state = "tuned"
        logger.info(
            "tfface.data.synthetic renderer: %s (process-wide; "
            "tfface.data.synthetic.disable_process_tuning() before the first render keeps "
            "them off).",
            ", ".join(done),
        )


def disable_process_tuning():
    """Renders in this process leave NumPy's BLAS threads and glibc's malloc as they are.

    For a process that renders synthetic faces beside other NumPy work that should keep
    its BLAS threads. Call it before the first render; calling it again is a no-op.
    Images are unchanged; the render costs 3.0–3.6 times the CPU (module docstring).

    Raises:
        RuntimeError: a render in this process has already applied the settings. They
            are not undone: glibc's thresholds cannot be restored to its adaptive mode.
    """
    global _state
    with _lock:
        if _state == "tuned":
            raise RuntimeError(
                "disable_process_tuning() must be called before the first synthetic render "
                "in the process; a render has already limited NumPy's BLAS to 1 thread and "
                "set glibc's malloc thresholds."
            )
        if _state is None:
            logger.info(
                "tfface.data.synthetic renderer: process tuning disabled; NumPy's BLAS "
                "threads and glibc's malloc thresholds are left as they are."
            )
        _state = "disabled"
