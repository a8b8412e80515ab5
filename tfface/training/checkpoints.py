"""The run's checkpoints: what they hold, where each worker writes, save and restore.

A checkpoint holds the model, the objective (head, centers), the optimizer (slots and
iterations), the step and epoch counters and, when it can be saved, the `tf.data` iterator
(so a resumed run continues the exact data stream; a Python-fed iterator is replayed to
the step instead). Every save and every restore is checked finite: a checkpoint on disk is
always a good one to resume from. Under MultiWorkerMirroredStrategy the save is collective:
the chief writes `<model_dir>/checkpoints`, the other workers a temporary directory.
"""

import os
import tempfile

import tensorflow as tf

from tfface.training import run_dir
from tfface.training.errors import NonFiniteLossError


class Checkpoints:
    """Checkpoints of one run in `<model_dir>/checkpoints`, the last `keep` kept.

    Args:
        model_dir: the run directory.
        items: {name: trackable} saved and restored (model, objective, optimizer, ...).
        step: the int64 step variable (also saved): checkpoints are numbered by it.
        data_iterator: the training iterator; saved as `data` when it is checkpointable.
        keep: how many recent checkpoints to keep.
        chief: this worker owns `model_dir` writes.
        is_finite: a callable returning True when every float variable of the state is
            finite; a non-finite state is neither saved nor resumed from.
    """

    def __init__(self, model_dir, items, step, data_iterator, keep, chief, is_finite):
        self.directory = os.path.join(model_dir, run_dir.CHECKPOINT_DIR)
        self.step = step
        self.data_iterator = data_iterator
        self.is_finite = is_finite
        self.iterator_saved = checkpointable_iterator(data_iterator)
        items = dict(items, step=step)
        if self.iterator_saved:
            items["data"] = data_iterator
        self.checkpoint = tf.train.Checkpoint(**items)
        # Non-chief workers must also save (the save is collective) but not into model_dir.
        where = self.directory if chief else _worker_directory()
        self.manager = tf.train.CheckpointManager(self.checkpoint, where, max_to_keep=keep)
        self._saved_step = None

    @property
    def latest(self):
        """The latest checkpoint this worker saved, or None."""
        return self.manager.latest_checkpoint

    def restore(self):
        """Restores the latest checkpoint of the run, if any; returns its path or None.

        Raises `NonFiniteLossError` when it holds non-finite values. A data iterator that
        is not in the checkpoint is advanced by the restored number of steps.
        """
        path = tf.train.latest_checkpoint(self.directory)
        if path is None:
            return None
        self.checkpoint.restore(path).assert_existing_objects_matched()
        step = int(self.step.numpy())
        if not self.is_finite():
            raise NonFiniteLossError(
                f"The checkpoint {path} holds non-finite values (written before the NaN "
                "guard checked saves?); resume from an earlier one.",
                step=step,
                last_checkpoint=path,
            )
        self._saved_step = step
        if not self.iterator_saved:
            # The iterator could not be checkpointed: replay the data stream to the step.
            for _ in range(step):
                next(self.data_iterator)
        return path

    def save(self):
        """Saves a checkpoint numbered by the step (none twice for one step); refuses
        (raises `NonFiniteLossError`) a non-finite state."""
        step = int(self.step.numpy())
        if step == self._saved_step:  # e.g. a signal right after a periodic save
            return self.latest
        if not self.is_finite():
            raise NonFiniteLossError(
                f"Refusing to save non-finite values at step {step}; the last good "
                f"checkpoint is {self.latest}.",
                step=step,
                last_checkpoint=self.latest,
            )
        path = self.manager.save(checkpoint_number=step)
        self._saved_step = step
        return path


def _worker_directory():
    return os.path.join(tempfile.gettempdir(), f"tfface_worker_ckpt_{os.getpid()}")


def checkpointable_iterator(iterator):
    """tf.data iterators are checkpointable unless the pipeline holds Python state."""
    if not isinstance(iterator, tf.data.Iterator):
        return False
    try:
        with tempfile.TemporaryDirectory() as d:
            tf.train.Checkpoint(data=iterator).write(os.path.join(d, "probe"))
        return True
    except (tf.errors.FailedPreconditionError, tf.errors.UnimplementedError, ValueError):
        return False
