"""SIGINT/SIGTERM during training: catch, agree across workers, stop after the same step.

`SignalCatcher` turns the signals into a pending `signum` while the loop runs (the loop
saves and raises `TrainingInterrupted` after the step in flight). With several workers a
signal reaches one of them, so every step all-reduces each worker's pending signal:
`pending_counts` (replica context) encodes it as one float per signal, the trainer sums
them in the one collective it already runs for the non-finite flag, and `agreed_signal`
decodes the sum on every worker alike, so all stop after the same step and join the same
(collective) save.
"""

import signal
import threading

import tensorflow as tf

# The signals that stop a run with a checkpoint, in increasing precedence.
SIGNALS = (int(signal.SIGINT), int(signal.SIGTERM))


def can_catch():
    """Python delivers signals to the main thread only: elsewhere nothing is caught."""
    return threading.current_thread() is threading.main_thread()


def pending_counts(signum):
    """[len(SIGNALS)] float32: 1 where `signum` (an int32 scalar, 0: none) is that signal.
    Summed over workers, they count the workers that received each signal."""
    return [tf.cast(tf.equal(signum, s), tf.float32) for s in SIGNALS]


def agreed_signal(counts):
    """The signal every worker acts on (int32; 0: none) from the summed `pending_counts`:
    the one of highest precedence any worker received (SIGTERM over SIGINT). Summed
    counts because `ReduceOp` has no MAX."""
    seen = tf.constant(0, tf.int32)
    for i, s in enumerate(SIGNALS):
        seen = tf.where(counts[i] > 0, s, seen)
    return seen


class SignalCatcher:
    """Within the block, SIGINT/SIGTERM only set `signum` (the loop saves and stops after
    the step in flight); a second signal restores the previous handlers and acts at once.

    Args:
        enabled: install the handlers (False: a no-op block; see `can_catch`).
    """

    SIGNALS = SIGNALS

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if self.enabled:
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            return
        self._restore()
        signal.raise_signal(signum)

    def _restore(self):
        for signum, handler in self._previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        self._previous = {}

    def __exit__(self, *exc_info):
        self._restore()
