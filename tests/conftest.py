"""Test-session set-up: quiet TF, CPU only, two logical CPU devices for strategy tests, and
the `tensorflow_only` marker skipped under the JAX and torch backends."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    # Logical devices must be configured before TF initialises its runtime; every test then
    # sees /cpu:0 and /cpu:1, which MirroredStrategy tests use as two replicas.
    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )

# The tfa parity module is TF-vs-TF by construction (and `parity`-marked): not collected
# where TensorFlow is not the backend (the .venv-jax / .venv-torch have no TensorFlow).
collect_ignore = [] if keras.backend.backend() == "tensorflow" else ["losses/test_tfa_parity.py"]


def pytest_collection_modifyitems(config, items):
    # Under KERAS_BACKEND=jax/torch (`make test-backends`), tests of TensorFlow machinery
    # (tf.distribute, tf.data, tf.function graphs, tf.train.Checkpoint) do not apply.
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend (KERAS_BACKEND={backend})")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)
