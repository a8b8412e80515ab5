"""ArcFace head: s · cos(θ + m) on the target class."""

import math

from keras import ops

from tfface.api_export import tfface_export
from tfface.layers.margin_softmax import MarginSoftmax
from tfface.layers.margin_softmax import safe_sine


@tfface_export("tfface.layers.ArcFace")
class ArcFace(MarginSoftmax):
    """Additive angular margin: logit_y = s · cos(θ_y + m), logit_j = s · cos θ_j (j ≠ y).

    cos(θ + m) is computed as cos θ · cos m − sin θ · sin m with
    sin θ = sqrt(clip(1 − cos²θ, 0, 1)), so no acos is needed and the gradient stays
    finite at cos θ = ±1. Past θ = π − m, cos(θ + m) would increase again with θ (the
    target would get *easier* as it moves away), so where cos θ ≤ cos(π − m) the target
    uses the insightface fallback cos θ − m · sin(π − m) (a CosFace-like margin), as
    insightface and pytorch-metric-learning do. The target logit is then strictly
    decreasing in θ on [0, π], but not continuous: at θ = π − m it jumps down from
    s · (−1) to s · (−cos m − m · sin m), by s · (cos m + m · sin m − 1) (7.5 logits at
    s = 64, m = 0.5). With `easy_margin=True` the margin applies only where cos θ > 0 and
    the target is cos θ elsewhere.

    The jump, with W = the x-axis and embeddings 0.001 rad either side of θ = π − m:

    >>> import numpy as np, tfface
    >>> head = tfface.layers.ArcFace(num_classes=1)  # s = 64, m = 0.5
    >>> head.build((None, 2))
    >>> _ = head.kernel.assign([[1.0], [0.0]])
    >>> theta = np.pi - 0.5 + np.array([-1e-3, 1e-3])
    >>> x = np.stack([np.cos(theta), np.sin(theta)], axis=1).astype("float32")
    >>> np.round(np.asarray(head([x, np.zeros(2, "int64")]))[:, 0], 2)
    array([-64.  , -71.54], dtype=float32)

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        margin: float in [0, π/2], m. Defaults to `0.5`.
        easy_margin: bool. Defaults to `False`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[embeddings, labels]` → float32 training logits [B, C];
            `embeddings` → float32 s · cos θ [B, C] for inference.
        training: unused.

    Example:

    ```python
    embeddings = keras.Input((512,))
    labels = keras.Input((), dtype="int64")
    logits = tfface.layers.ArcFace(num_classes=10_000)([embeddings, labels])
    model = keras.Model([embeddings, labels], logits)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```

    Reference:
        Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
        CVPR 2019, arXiv 1801.07698; insightface `recognition/arcface_torch/losses.py`.
    """

    def __init__(
        self,
        num_classes,
        scale=64.0,
        margin=0.5,
        easy_margin=False,
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
        if not 0 <= margin <= math.pi / 2:
            raise ValueError(f"`margin` must be in [0, pi/2]. Received: margin={margin!r}")
        if not isinstance(easy_margin, bool):
            raise ValueError(f"`easy_margin` must be a bool. Received: easy_margin={easy_margin!r}")
        self.margin = float(margin)
        self.easy_margin = easy_margin

    def apply_margin(self, cos_target, training=None):
        m = self.margin
        cos_theta_plus_m = cos_target * math.cos(m) - safe_sine(cos_target) * math.sin(m)
        if self.easy_margin:
            return ops.where(ops.greater(cos_target, 0.0), cos_theta_plus_m, cos_target)
        threshold = math.cos(math.pi - m)
        fallback = cos_target - math.sin(math.pi - m) * m
        return ops.where(ops.greater(cos_target, threshold), cos_theta_plus_m, fallback)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "easy_margin": self.easy_margin})
        return config
