"""L2 normalisation as a Keras layer."""

import keras
from keras import ops

from tfface.api_export import tfface_export


@tfface_export("tfface.layers.L2Normalize")
class L2Normalize(keras.layers.Layer):
    """Scales vectors to unit L2 norm: x / sqrt(max(Σx², epsilon)).

    Same semantics as `tf.math.l2_normalize`. The squared norm is summed in float32 even
    under a `mixed_float16` policy: an embedding with norm above 256 has Σx² > 65,504,
    which overflows float16. The output is cast back to the layer's compute dtype.

    Args:
        axis: int or tuple of ints, the axis (axes) to normalise over. Defaults to `-1`.
        epsilon: float > 0, lower bound on the squared norm, so a zero vector maps to
            zero instead of NaN. Defaults to `1e-12`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor.

    Example:

    >>> import numpy as np
    >>> layer = L2Normalize()
    >>> keras.ops.convert_to_numpy(layer(np.array([[3.0, 4.0]]))).astype(float).round(3).tolist()
    [[0.6, 0.8]]

    Reference:
        FaceNet (Schroff et al., 2015), embeddings constrained to the unit hypersphere.
    """

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, tuple, list)) or isinstance(axis, bool):
            raise ValueError(f"`axis` must be an int or a tuple of ints. Received: axis={axis!r}")
        if isinstance(axis, list):
            axis = tuple(axis)
        if not epsilon > 0:
            raise ValueError(f"`epsilon` must be > 0. Received: epsilon={epsilon}")
        self.axis = axis
        self.epsilon = epsilon
        self.supports_masking = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        squared_norm = ops.sum(ops.square(x), axis=self.axis, keepdims=True)
        x = x * ops.rsqrt(ops.maximum(squared_norm, self.epsilon))
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config
