"""Base layer of the margin-softmax heads: class weights, normalisation, scale, one hook."""

import keras
from keras import ops

from tfface.api_export import tfface_export

# Lower bound on squared norms (same as `tf.math.l2_normalize`): a zero vector gives 0, not NaN.
_NORM_EPSILON = 1e-12


def l2_norm(x, axis):
    """‖x‖ along `axis` (keepdims), never below sqrt(_NORM_EPSILON), so division is safe."""
    return ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), _NORM_EPSILON))


def safe_sine(cosine):
    """sin θ = sqrt(clip(1 − cos²θ, 0, 1)) with a finite gradient at |cos θ| = 1.

    The exact derivative −cos θ / sin θ is infinite at θ ∈ {0, π}; there the gradient of
    this term is set to 0 (a valid subgradient of the clipped function), elsewhere it is
    exact. The forward value is exact everywhere.
    """
    squared = ops.clip(1.0 - ops.square(cosine), 0.0, 1.0)
    positive = ops.greater(squared, 0.0)
    return ops.where(positive, ops.sqrt(ops.where(positive, squared, 1.0)), 0.0)


@tfface_export("tfface.layers.MarginSoftmax")
class MarginSoftmax(keras.layers.Layer):
    """Base class of margin-softmax heads (NormFace, CosFace, ArcFace, SphereFace, ...).

    The layer owns the class weight matrix `W` [D, C], computes cos θ_j between each
    embedding and each class weight, and turns it into logits. A subclass overrides a
    single hook, `apply_margin(cos_target, training)`, which maps the cosine of the
    target class to the margin-penalised value used in its place. Logits are

        logit_j = f(x) · g(W_j) · (apply_margin(cos θ_y) if j == y else cos θ_j)

    with f(x) = `scale` when features are normalised (`scale` is not None) and ‖x‖
    otherwise, and g(W_j) = 1 when `normalize_weights` (a class attribute) is True and
    ‖W_j‖ otherwise.

    All maths runs in float32 and the output is float32 even under a `mixed_float16`
    policy: exp(64 · cos θ) overflows float16 (max 65,504), and cos(θ + m) near |cos θ| = 1
    loses its margin in float16. `W` is a float32 variable that is never autocast.

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, the fixed feature norm s of normalised-feature heads, or `None`
            to keep the embedding norm ‖x‖ as the logit scale (SphereFace, L-Softmax).
            Defaults to `None`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: either `[embeddings, labels]` (float [B, D], int [B] or [B, 1]) for
            training logits [B, C] with the margin on each sample's target class, or
            `embeddings` alone for inference logits f(x)·g(W_j)·cos θ_j [B, C].
        training: bool. Heads with a training schedule (SphereFace's λ) advance it only
            on training calls.

    Example:

    ```python
    class MyHead(tfface.layers.MarginSoftmax):
        def apply_margin(self, cos_target, training=None):
            return cos_target - 0.2
    ```

    Reference:
        PyTorch Metric Learning `LargeMarginSoftmaxLoss` (hook layout);
        Wang et al., "NormFace", ACM MM 2017.
    """

    normalize_weights = True

    def __init__(
        self,
        num_classes,
        scale=None,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"`num_classes` must be an int >= 1. Received: num_classes={num_classes!r}"
            )
        if scale is not None and not scale > 0:
            raise ValueError(f"`scale` must be > 0 or None. Received: scale={scale!r}")
        self.num_classes = num_classes
        self.scale = None if scale is None else float(scale)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    @property
    def input_dtype(self):
        # Embeddings are cast up to float32 on entry (not down to float16).
        return "float32"

    def build(self, input_shape):
        embeddings_shape = _split_shapes(input_shape)[0]
        if len(embeddings_shape) != 2 or embeddings_shape[-1] is None:
            raise ValueError(
                f"{self.__class__.__name__} expects embeddings of shape [batch, dim] with a "
                f"known dim. Received: embeddings shape={tuple(embeddings_shape)}"
            )
        self.kernel = self.add_weight(
            shape=(embeddings_shape[-1], self.num_classes),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            dtype="float32",
            autocast=False,
            name="kernel",
        )

    def apply_margin(self, cos_target, training=None):
        """Maps cos θ_y [B] (float32) to the value that replaces it in the target logit."""
        raise NotImplementedError(
            f"{self.__class__.__name__} must override `apply_margin(cos_target, training)`."
        )

    def call(self, inputs, training=None):
        embeddings, labels = _split_inputs(inputs, self.__class__.__name__)
        x = ops.cast(embeddings, "float32")
        w = ops.cast(self.kernel, "float32")
        x_norm = l2_norm(x, axis=-1)  # [B, 1]
        w_norm = l2_norm(w, axis=0)  # [1, C]
        cosine = ops.clip(ops.matmul(x / x_norm, w / w_norm), -1.0, 1.0)

        magnitude = x_norm if self.scale is None else self.scale
        if not self.normalize_weights:
            magnitude = magnitude * w_norm
        if labels is None:
            return magnitude * cosine

        labels = ops.reshape(labels, (-1,))
        cos_target = ops.take_along_axis(cosine, ops.expand_dims(labels, -1), axis=1)[:, 0]
        target = ops.cast(self.apply_margin(cos_target, training=training), "float32")
        is_target = ops.equal(
            ops.expand_dims(labels, -1), ops.arange(self.num_classes, dtype=labels.dtype)
        )
        return magnitude * ops.where(is_target, ops.expand_dims(target, -1), cosine)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        if self.scale is not None:
            config["scale"] = self.scale
        return config


def _is_shape(shape):
    return isinstance(shape, (tuple, list)) and all(d is None or isinstance(d, int) for d in shape)


def _standardize_shape(shape):
    """TensorShape → tuple; lists/tuples of shapes handled element-wise."""
    if hasattr(shape, "as_list"):
        return tuple(shape.as_list())
    if isinstance(shape, (tuple, list)) and not _is_shape(shape):
        return [_standardize_shape(s) for s in shape]
    return shape


def _split_shapes(input_shape):
    """(embeddings_shape, labels_shape or None) from what Keras passes to `build`."""
    input_shape = _standardize_shape(input_shape)
    if _is_shape(input_shape):
        return tuple(input_shape), None
    if isinstance(input_shape, (tuple, list)) and len(input_shape) == 2:
        return tuple(input_shape[0]), tuple(input_shape[1])
    raise ValueError(
        f"Expected `embeddings` or `[embeddings, labels]`. Received: input_shape={input_shape!r}"
    )


def _split_inputs(inputs, layer_name):
    """(embeddings, labels or None); checks that labels are integers of shape [B] or [B, 1]."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != 2:
            raise ValueError(
                f"{layer_name} expects `embeddings` or `[embeddings, labels]`. "
                f"Received: a list of {len(inputs)} inputs"
            )
        embeddings, labels = inputs
        if not keras.backend.is_int_dtype(labels.dtype):
            raise ValueError(
                f"{layer_name} expects integer class labels; float labels are inexact above "
                f"2,048 in float16. Received: labels dtype={labels.dtype}"
            )
        rank = len(labels.shape)
        if rank not in (1, 2) or (rank == 2 and labels.shape[-1] not in (1, None)):
            raise ValueError(
                f"{layer_name} expects labels of shape [batch] or [batch, 1]. "
                f"Received: labels shape={tuple(labels.shape)}"
            )
        return embeddings, labels
    return inputs, None
