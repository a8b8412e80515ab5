"""MagFace head: a magnitude-aware angular margin and the magnitude regulariser g(a)."""

import math

from keras import ops

from tfface.api_export import tfface_export
from tfface.layers.margin_softmax import MarginSoftmax
from tfface.layers.margin_softmax import l2_norm
from tfface.layers.margin_softmax import safe_sine


@tfface_export("tfface.layers.MagFace")
class MagFace(MarginSoftmax):
    """logit_y = s · cos(θ_y + m(a)), logit_j = s · cos θ_j, plus λ_g · g(a) in the loss.

    a = clip(‖x‖, l_a, u_a) is the magnitude of the *unnormalised* feature. The margin
    grows linearly with it,

        m(a) = (u_m − l_m) / (u_a − l_a) · (a − l_a) + l_m,

    and the regulariser g(a) = 1/a + a/u_a² (convex, minimal at a = u_a) rewards large
    magnitudes, so at convergence easy, high-quality faces sit at large ‖x‖ near their
    class centre and ‖x‖ becomes a quality score. The gradient flows through a into the
    margin and the regulariser (zero outside [l_a, u_a], where a is clipped), as in the
    official code.

    With `easy_margin=True` (the official `MagLinear` default) the margin applies only
    where cos θ_y > 0; with `False`, past θ_y = π − m(a) the target uses the ArcFace
    fallback cos θ_y − m(a) · sin(π − m(a)).

    **How the regulariser joins the loss.** Every call with labels adds
    λ_g · mean_i g(a_i) with `self.add_loss`, so `model.fit` adds it to the compiled
    cross-entropy on its own (Keras sums `model.losses` into the loss, on every backend)
    and `model.evaluate` reports the same objective. A custom training loop adds
    `sum(model.losses)` after the forward pass (or `stateless_call(...,
    return_losses=True)` on JAX). `regularizer(features)` returns the unweighted
    mean g(a) for logging.

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        lower_norm: float > 0, l_a. Defaults to `10.0`.
        upper_norm: float > l_a, u_a. Defaults to `110.0`.
        lower_margin: float in [0, π/2], l_m = m(l_a). Defaults to `0.45`.
        upper_margin: float in [l_m, π/2], u_m = m(u_a). Defaults to `0.8`.
        lambda_g: float >= 0, weight λ_g of the regulariser. Defaults to `35.0`.
        easy_margin: bool. Defaults to `True`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[features, labels]` → float32 training logits [B, C] (and the regulariser
            in `head.losses`); `features` → float32 s · cos θ [B, C] for inference.
        training: unused: the margin and the regulariser do not depend on it.

    Example:

    >>> import numpy as np
    >>> head = MagFace(num_classes=3)
    >>> features = np.array([[60.0, 0.0], [0.0, 200.0]], "float32")  # a = 60, 110
    >>> np.round(np.asarray(head.margin_for_norm(np.array([60.0, 110.0]))), 3)
    array([0.625, 0.8  ], dtype=float32)
    >>> logits = head([features, np.array([0, 1])])
    >>> # λ_g · mean(1/60 + 60/110², 1/110 + 110/110²) = 35 · 0.0199036
    >>> round(float(head.losses[0]), 4)
    0.6966

    Reference:
        Meng et al., "MagFace: A Universal Representation for Face Recognition and
        Quality Assessment", CVPR 2021, arXiv 2103.06627; IrvingMeng/MagFace
        `models/magface.py` (MagLinear, MagLoss) and `run/run.sh` (l_a = 10, u_a = 110,
        l_m = 0.45, u_m = 0.8, λ_g = 35, s = 64).
    """

    def __init__(
        self,
        num_classes,
        scale=64.0,
        lower_norm=10.0,
        upper_norm=110.0,
        lower_margin=0.45,
        upper_margin=0.8,
        lambda_g=35.0,
        easy_margin=True,
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
        if not lower_norm > 0:
            raise ValueError(f"`lower_norm` must be > 0. Received: lower_norm={lower_norm!r}")
        if not upper_norm > lower_norm:
            raise ValueError(
                f"`upper_norm` must be > `lower_norm` ({lower_norm!r}). "
                f"Received: upper_norm={upper_norm!r}"
            )
        if not 0 <= lower_margin <= math.pi / 2:
            raise ValueError(
                f"`lower_margin` must be in [0, pi/2]. Received: lower_margin={lower_margin!r}"
            )
        if not lower_margin <= upper_margin <= math.pi / 2:
            raise ValueError(
                f"`upper_margin` must be in [lower_margin, pi/2]. "
                f"Received: upper_margin={upper_margin!r}"
            )
        if not lambda_g >= 0:
            raise ValueError(f"`lambda_g` must be >= 0. Received: lambda_g={lambda_g!r}")
        if not isinstance(easy_margin, bool):
            raise ValueError(f"`easy_margin` must be a bool. Received: easy_margin={easy_margin!r}")
        self.lower_norm = float(lower_norm)
        self.upper_norm = float(upper_norm)
        self.lower_margin = float(lower_margin)
        self.upper_margin = float(upper_margin)
        self.lambda_g = float(lambda_g)
        self.easy_margin = easy_margin

    def magnitude(self, norms):
        """a = clip(‖x‖, l_a, u_a), float32."""
        norms = ops.cast(ops.convert_to_tensor(norms), "float32")
        return ops.clip(norms, self.lower_norm, self.upper_norm)

    def margin_for_norm(self, norms):
        """m(a) for feature norms ‖x‖ (any shape), float32."""
        slope = (self.upper_margin - self.lower_margin) / (self.upper_norm - self.lower_norm)
        return slope * (self.magnitude(norms) - self.lower_norm) + self.lower_margin

    def regularizer(self, features):
        """mean_i g(a_i) = mean_i (1/a_i + a_i/u_a²) of features [B, D], unweighted."""
        features = ops.cast(ops.convert_to_tensor(features), "float32")
        return self._mean_g(self.magnitude(l2_norm(features, axis=-1)[..., 0]))

    def own_loss(self, features):
        """The term this head adds to the loss, λ_g · mean_i g(a_i), for callers that use
        `margin_cosines` without calling the layer (Partial FC)."""
        return self.lambda_g * self.regularizer(features)

    def _mean_g(self, magnitude):
        return ops.mean(1.0 / magnitude + magnitude / self.upper_norm**2)

    def margin_cosines(self, batch):
        magnitude = self.magnitude(batch.feature_norms)
        margin = self.margin_for_norm(batch.feature_norms)
        cosine = batch.cos_target
        target = cosine * ops.cos(margin) - safe_sine(cosine) * ops.sin(margin)
        if self.easy_margin:
            target = ops.where(ops.greater(cosine, 0.0), target, cosine)
        else:
            threshold = ops.cos(math.pi - margin)
            fallback = cosine - ops.sin(math.pi - margin) * margin
            target = ops.where(ops.greater(cosine, threshold), target, fallback)
        self.add_loss(self.lambda_g * self._mean_g(magnitude))
        return target, batch.cosine

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "lower_norm": self.lower_norm,
                "upper_norm": self.upper_norm,
                "lower_margin": self.lower_margin,
                "upper_margin": self.upper_margin,
                "lambda_g": self.lambda_g,
                "easy_margin": self.easy_margin,
            }
        )
        return config
