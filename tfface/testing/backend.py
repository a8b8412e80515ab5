"""Backend-neutral test helpers: gradients under TensorFlow, JAX and torch, and TF-only tests.

The layer and loss suites run under `KERAS_BACKEND=tensorflow`, `jax` and `torch`
(`make test-backends`). Autodiff is the one thing `keras.ops` does not expose, so
`value_and_gradients` wraps each backend's own: `tf.GradientTape`, `jax.value_and_grad`,
`torch.autograd.grad`. Tests of TensorFlow-only machinery (`tf.distribute`, `tf.data`,
`tf.function` graphs, `tf.train.Checkpoint`) are marked `@pytest.mark.tensorflow_only`;
`tests/conftest.py` skips them on the other backends.
"""

import keras
import numpy as np


def backend():
    """The active Keras backend name: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


def value_and_gradients(fn, *args):
    """(fn(*args), [d fn / d arg for each arg]) as NumPy, with `fn` returning a scalar.

    `args` are float arrays; `fn` receives them as backend tensors and may close over
    anything else (labels, a layer). A gradient that does not depend on an argument is
    returned as zeros, on every backend.
    """
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    elif name == "jax":
        import jax

        tensors = [jax.numpy.asarray(a) for a in args]
        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(tensors))))(*tensors)
    elif name == "torch":
        import torch

        tensors = [torch.tensor(np.asarray(a), requires_grad=True) for a in args]
        value = fn(*tensors)
        grads = torch.autograd.grad(value, tensors, allow_unused=True)
        grads = [
            torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads, strict=True)
        ]
        value = value.detach()
    else:
        raise ValueError(f"No gradient helper for this Keras backend. Received: backend={name!r}")
    return keras.ops.convert_to_numpy(value), [keras.ops.convert_to_numpy(g) for g in grads]


def compiled(fn):
    """`fn` traced into the backend's graph form: `tf.function`, `jax.jit`; torch runs eager.

    Labels and embeddings passed to the result must be arrays (static shapes under jit).
    """
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    if name == "jax":
        import jax

        return jax.jit(fn)
    return fn
