"""Base layer of the margin-softmax heads: class weights, normalisation, scale, one hook."""

import dataclasses

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


@tfface_export("tfface.layers.MarginBatch")
@dataclasses.dataclass(frozen=True)
class MarginBatch:
    """What `MarginSoftmax.margin_cosines` sees of one batch (float32 tensors, B samples).

    Attributes:
        cosine: [B, C] cos θ_j of every sample and class, clipped to [−1, 1] (for
            sub-centre heads, already the maximum over each class's sub-centres).
        cos_target: [B] cos θ_y, the target column of `cosine`.
        labels: [B] integer class labels.
        is_target: [B, C] bool, `labels[i] == j`.
        feature_norms: [B] ‖x‖ of the embeddings as the head received them (before its
            own normalisation), with their gradient; a head that must not send gradient
            through the norm applies `keras.ops.stop_gradient`.
        training: the layer's `training` argument (True, False or None).
    """

    cosine: object
    cos_target: object
    labels: object
    is_target: object
    feature_norms: object
    training: object = None


@tfface_export("tfface.layers.MarginSoftmax")
class MarginSoftmax(keras.layers.Layer):
    """Base class of margin-softmax heads (NormFace, CosFace, ArcFace, SphereFace, ...).

    The layer owns the class weight matrix `W` [D, C·K] (K = `centers_per_class`
    sub-centres per class, 1 except for sub-centre heads), computes cos θ_j between each
    embedding and each class (the largest over the class's sub-centres), and turns it into
    logits. A subclass overrides one of two hooks:

    - `apply_margin(cos_target, training)` maps cos θ_y [B] to the margin-penalised value
      used in its place (ArcFace, CosFace, SphereFace, ...: a margin that depends on
      cos θ_y alone);
    - `margin_cosines(batch)` receives a `MarginBatch` (all cosines, the labels, the
      feature norms ‖x‖, the training flag) and returns `(target [B], cosine [B, C])`, the
      value of the target logit and the cosines used for every other class (AdaFace and
      MagFace read ‖x‖, CurricularFace re-weights hard negatives with a batch EMA,
      ElasticFace draws a margin per sample). Its default calls `apply_margin` and leaves
      the other classes as they are.

    Logits are

        logit_j = f(x) · g(W_j) · (target if j == y else cosine_j)

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
        training: bool. Heads with a training schedule or batch statistics (SphereFace's
            λ, AdaFace's norm statistics, CurricularFace's t) advance them only on
            training calls.

    Example:

    ```python
    class MyHead(tfface.layers.MarginSoftmax):
        def apply_margin(self, cos_target, training=None):
            return cos_target - 0.2


    class NormScaledMargin(tfface.layers.MarginSoftmax):
        # A margin that grows with the feature norm: reads `batch.feature_norms`.
        def margin_cosines(self, batch):
            margin = 0.1 * keras.ops.tanh(keras.ops.stop_gradient(batch.feature_norms))
            return batch.cos_target - margin, batch.cosine
    ```

    Reference:
        PyTorch Metric Learning `LargeMarginSoftmaxLoss` (hook layout);
        Wang et al., "NormFace", ACM MM 2017.
    """

    normalize_weights = True
    # Columns of W per class; sub-centre heads set more and the cosine is their maximum.
    centers_per_class = 1

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
        if self.centers_per_class > 1 and not self.normalize_weights:
            # ‖W_j‖ of a class with several sub-centres is undefined.
            raise ValueError(
                f"{self.__class__.__name__}: sub-centres need normalised class weights. "
                f"Received: centers_per_class={self.centers_per_class}, "
                f"normalize_weights={self.normalize_weights}"
            )
        self.kernel = self.add_weight(
            shape=(embeddings_shape[-1], self.num_classes * self.centers_per_class),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            dtype="float32",
            autocast=False,
            name="kernel",
        )

    def apply_margin(self, cos_target, training=None):
        """Maps cos θ_y [B] (float32) to the value that replaces it in the target logit."""
        raise NotImplementedError(
            f"{self.__class__.__name__} must override `apply_margin(cos_target, training)` "
            "or `margin_cosines(batch)`."
        )

    def margin_cosines(self, batch):
        """(target [B], cosine [B, C]) from a `MarginBatch`: the target logit's value and
        the cosines used for the other classes. Defaults to `apply_margin` on cos θ_y."""
        target = self.apply_margin(batch.cos_target, training=batch.training)
        return target, batch.cosine

    def call(self, inputs, training=None):
        embeddings, labels = _split_inputs(inputs, self.__class__.__name__)
        x = ops.cast(embeddings, "float32")
        w = ops.cast(self.kernel, "float32")
        x_norm = l2_norm(x, axis=-1)  # [B, 1]
        w_norm = l2_norm(w, axis=0)  # [1, C·K]
        cosine = ops.clip(ops.matmul(x / x_norm, w / w_norm), -1.0, 1.0)
        if self.centers_per_class > 1:
            # Column c·K + k is sub-centre k of class c (insightface's layout).
            cosine = ops.max(
                ops.reshape(cosine, (-1, self.num_classes, self.centers_per_class)), axis=-1
            )

        magnitude = x_norm if self.scale is None else self.scale
        if not self.normalize_weights:
            magnitude = magnitude * w_norm
        if labels is None:
            return magnitude * cosine

        labels = ops.reshape(labels, (-1,))
        cos_target = ops.take_along_axis(cosine, ops.expand_dims(labels, -1), axis=1)[:, 0]
        is_target = ops.equal(
            ops.expand_dims(labels, -1), ops.arange(self.num_classes, dtype=labels.dtype)
        )
        target, cosine = self.margin_cosines(
            MarginBatch(
                cosine=cosine,
                cos_target=cos_target,
                labels=labels,
                is_target=is_target,
                feature_norms=x_norm[:, 0],
                training=training,
            )
        )
        target = ops.cast(target, "float32")
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
