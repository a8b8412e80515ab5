"""CurricularFace head: ArcFace's target plus hard negatives re-weighted by an EMA t."""

import math

from keras import ops

from tfface.api_export import tfface_export
from tfface.layers.margin_softmax import MarginSoftmax
from tfface.layers.margin_softmax import safe_sine


@tfface_export("tfface.layers.CurricularFace")
class CurricularFace(MarginSoftmax):
    """Adaptive curriculum: easy samples first, hard negatives later.

    The target logit is ArcFace's, s · T(cos θ_y) with T(cos θ_y) = cos(θ_y + m) and the
    insightface fallback cos θ_y − m · sin(π − m) past θ_y = π − m. A negative class j is
    *hard* for the sample when cos θ_j > cos(θ_y + m) (the fallback is not used for the
    test); its logit is modulated, the others are left as they are:

        N(t, cos θ_j) = cos θ_j                 if cos(θ_y + m) ≥ cos θ_j,
                        cos θ_j · (t + cos θ_j)  otherwise.

    t is an EMA of the batch's mean target cosine, t ← α · mean_i cos θ_{y_i} + (1 − α) · t,
    starting from 0 and updated on every training call *before* the negatives are
    modulated (as the official code does), so early in training (t ≈ 0, cos θ_j < 1)
    hard negatives are down-weighted and, as t grows towards 1, up-weighted. t carries no
    gradient; the gradient of a hard negative is (t + 2 cos θ_j).

    `t` is a float32 non-trainable weight, saved by `.keras` files and checkpoints.
    Non-training calls with labels use it without updating; calls without labels return
    s · cos θ. Under a `tf.distribute` strategy the replicas' new values are averaged
    (`aggregation="mean"`), which equals the EMA of the global batch's mean when the
    replicas' batches have equal sizes.

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        margin: float in [0, π/2], m. Defaults to `0.5`.
        momentum: float in (0, 1], α. Defaults to `0.01`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[embeddings, labels]` → float32 training logits [B, C];
            `embeddings` → float32 s · cos θ [B, C] for inference.
        training: bool; a training call with labels updates `t`.

    Example:

    >>> import numpy as np
    >>> head = CurricularFace(num_classes=2)
    >>> head.build((None, 2))
    >>> _ = head.kernel.assign(np.eye(2, dtype="float32"))
    >>> x = np.array([[1.0, 0.0]], "float32")  # cos θ_y = 1
    >>> _ = head([x, np.array([0])], training=True)
    >>> round(float(head.t.numpy()), 4)  # 0.01 · 1 + 0.99 · 0
    0.01

    Reference:
        Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
        Recognition", CVPR 2020, arXiv 2004.00288; HuangYG123/CurricularFace
        `head/metrics.py` (m = 0.5, s = 64, momentum 0.01, t = 0 at start).
    """

    def __init__(
        self,
        num_classes,
        scale=64.0,
        margin=0.5,
        momentum=0.01,
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
        if not 0 < momentum <= 1:
            raise ValueError(f"`momentum` must be in (0, 1]. Received: momentum={momentum!r}")
        self.margin = float(margin)
        self.momentum = float(momentum)

    def build(self, input_shape):
        super().build(input_shape)
        # MEAN: under a strategy the replicas' EMA updates are averaged.
        self.t = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="float32",
            trainable=False,
            autocast=False,
            aggregation="mean",
            name="t",
        )

    def margin_cosines(self, batch):
        m = self.margin
        cos_target = batch.cos_target
        cos_theta_m = cos_target * math.cos(m) - safe_sine(cos_target) * math.sin(m)
        threshold = math.cos(math.pi - m)
        fallback = cos_target - math.sin(math.pi - m) * m
        target = ops.where(ops.greater(cos_target, threshold), cos_theta_m, fallback)

        t = self.t.value
        if batch.training:
            t = self.momentum * ops.mean(ops.stop_gradient(cos_target)) + (1.0 - self.momentum) * t
            self.t.assign(t)
        cosine = batch.cosine
        hard = ops.greater(cosine, ops.expand_dims(cos_theta_m, -1))
        return target, ops.where(hard, cosine * (t + cosine), cosine)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "momentum": self.momentum})
        return config
