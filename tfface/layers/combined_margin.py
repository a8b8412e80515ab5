"""Combined margin head (insightface): s · (cos(m1·θ + m2) − m3) on the target class."""

from keras import ops

from tfface.api_export import tfface_export
from tfface.layers.margin_softmax import MarginSoftmax
from tfface.layers.margin_softmax import safe_sine


@tfface_export("tfface.layers.CombinedMargin")
class CombinedMargin(MarginSoftmax):
    """logit_y = s · (cos(m1 · θ_y + m2) − m3), logit_j = s · cos θ_j (j ≠ y).

    (m1, m2, m3) = (1, 0, 0.35) is CosFace, (1, 0.5, 0) is ArcFace *without* its
    θ + m > π fallback, (1, 0.3, 0.2) the insightface combined variant, (m, 0, 0) a
    SphereFace-style multiplicative margin without ψ's monotonic extension. Like
    insightface's original combined loss, no fallback is applied past m1·θ + m2 = π; use
    `ArcFace` for that. θ is computed as atan2(sin θ, cos θ) with the gradient-safe
    sin θ of `ArcFace`, so the gradient is finite at cos θ = ±1 (acos' is infinite there).

    Args:
        num_classes: int >= 1, number of identities C.
        m1: float > 0, multiplicative angular margin. Defaults to `1.0`.
        m2: float >= 0, additive angular margin. Defaults to `0.3`.
        m3: float >= 0, additive cosine margin. Defaults to `0.2`.
        scale: float > 0, s. Defaults to `64.0`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[embeddings, labels]` → float32 training logits [B, C];
            `embeddings` → float32 s · cos θ [B, C] for inference.
        training: unused.

    Example:

    >>> import numpy as np
    >>> head = CombinedMargin(num_classes=3, m1=1.0, m2=0.3, m3=0.2)
    >>> head([np.ones((2, 4), "float32"), np.array([0, 2])]).shape
    TensorShape([2, 3])

    Reference:
        Deng et al., ArcFace, CVPR 2019, Sec. 2.3 (combined margin); insightface
        `recognition/arcface_mxnet/train.py` (loss_type 5).
    """

    def __init__(
        self,
        num_classes,
        m1=1.0,
        m2=0.3,
        m3=0.2,
        scale=64.0,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        if scale is None:
            raise ValueError("`scale` must be > 0. Received: scale=None")
        super().__init__(
            num_classes,
            scale=scale,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            **kwargs,
        )
        if not m1 > 0:
            raise ValueError(f"`m1` must be > 0. Received: m1={m1!r}")
        if not m2 >= 0:
            raise ValueError(f"`m2` must be >= 0. Received: m2={m2!r}")
        if not m3 >= 0:
            raise ValueError(f"`m3` must be >= 0. Received: m3={m3!r}")
        self.m1 = float(m1)
        self.m2 = float(m2)
        self.m3 = float(m3)

    def apply_margin(self, cos_target, training=None):
        theta = ops.arctan2(safe_sine(cos_target), cos_target)
        return ops.cos(self.m1 * theta + self.m2) - self.m3

    def get_config(self):
        config = super().get_config()
        config.update({"m1": self.m1, "m2": self.m2, "m3": self.m3})
        return config
