"""Test-session set-up: quiet TF, CPU only, and two logical CPU devices for strategy tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tensorflow as tf  # noqa: E402

# Logical devices must be configured before TF initialises its runtime; every test then
# sees /cpu:0 and /cpu:1, which MirroredStrategy tests use as two replicas.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
