"""Strategy set-up: one name per `tf.distribute` strategy the trainer supports."""

import itertools
import json
import os

import tensorflow as tf

from tfface.training.choices import STRATEGIES


def make_strategy(name="auto"):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
        name: `"auto"` (MirroredStrategy over all GPUs when there is more than one, else
            OneDeviceStrategy on the first GPU or the CPU), `"one_device"`, `"mirrored"`
            (every visible GPU, or every logical CPU when there is no GPU) or
            `"multi_worker"` (MultiWorkerMirroredStrategy; needs `TF_CONFIG`).

    Returns:
        A `tf.distribute.Strategy`.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "multi_worker":
        return _multi_worker()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one_device"
    if name == "one_device":
        device = gpus[0].name if gpus else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        # Without GPUs, mirror over logical CPUs (tests configure two): one replica each.
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return mirrored_strategy(devices)


_KEY_BASES = itertools.count(1)


def mirrored_strategy(devices):
    """A `tf.distribute.MirroredStrategy` over `devices` that may share a process with others.

    Every MirroredStrategy starts its collective group and instance keys at the same values,
    and TF's runtime caches each collective instance's shape and type by key, so a second
    strategy in one process (a notebook, a test session) fails with "Shape mismatch in the
    collective instance 101". TF's own tests give each strategy a distinct
    `_collective_key_base`; so does this function. The base is read when the strategy is
    built and put back afterwards, so a strategy the user builds directly keeps TF's default.
    """
    default = tf.distribute.MirroredStrategy._collective_key_base
    tf.distribute.MirroredStrategy._collective_key_base = 10_000 * next(_KEY_BASES)
    try:
        return tf.distribute.MirroredStrategy(devices)
    finally:
        tf.distribute.MirroredStrategy._collective_key_base = default


def _multi_worker():
    # Nothing may touch the TF runtime before this (not even listing devices): collective
    # ops must be configured at program start-up.
    tf_config = os.environ.get("TF_CONFIG")
    if not tf_config:
        raise ValueError(
            "`strategy='multi_worker'` needs the TF_CONFIG environment variable (cluster and "
            "task of this worker). Received: TF_CONFIG unset"
        )
    try:
        json.loads(tf_config)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({e}). Received: TF_CONFIG={tf_config!r}"
        ) from e
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
    """True on the worker that owns `model_dir` writes (always true unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0
