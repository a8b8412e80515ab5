"""AdaFace head: a margin that adapts to the feature norm, a proxy of image quality."""

import math

import keras
from keras import ops

from tfface.api_export import tfface_export
from tfface.layers.margin_softmax import MarginSoftmax
from tfface.layers.margin_softmax import safe_sine

# Official constants (mk-minchul/AdaFace head.py): ε of the cosine/angle clamps, the clip of
# the norms and the initial EMA statistics of the norm.
_EPS = 1e-3
_NORM_MIN, _NORM_MAX = 1e-3, 100.0
_INITIAL_MEAN, _INITIAL_STD = 20.0, 100.0


@tfface_export("tfface.layers.AdaFace")
class AdaFace(MarginSoftmax):
    """Adaptive margin: logit_y = s · (cos(θ_y + g_angle) − g_add), logit_j = s · cos θ_j.

    The margin follows the norm ‖z‖ of the *unnormalised* feature, a proxy of image
    quality: with

        ẑ = clip(h · (‖z‖ − μ_z) / (σ_z + ε), −1, 1),
        g_angle = −m · ẑ,    g_add = m · ẑ + m,

    a high-norm (good) image gets an ArcFace-like angular margin (g_angle < 0 pushes the
    boundary towards hard samples), a low-norm (poor) image a CosFace-like one that
    ignores its hardest examples. μ_z and σ_z are an EMA of the batch mean and standard
    deviation of ‖z‖ (Bessel-corrected, as `torch.std`):
    μ ← α · mean_batch + (1 − α) · μ, σ ← α · std_batch + (1 − α) · σ, updated on every
    training call *before* the margin is computed, starting from μ = 20, σ = 100. Norms
    are clipped to [0.001, 100] and carry no gradient through the margin. θ_y comes from
    cos θ_y clamped to [−1 + ε, 1 − ε] and θ_y + g_angle is clipped to [ε, π − ε],
    ε = 10⁻³, as in the official head. Non-target cosines are not clamped here (the
    official head clamps them to ±(1 − 10⁻³) for its acos, which this layer does not
    take): the two differ only where |cos θ_j| > 1 − 10⁻³, by at most 10⁻³ · s.

    `batch_mean` and `batch_std` are float32 non-trainable weights, saved by `.keras` files
    and checkpoints. Non-training calls with labels use them without updating; calls
    without labels return s · cos θ. Under a `tf.distribute` strategy each replica updates
    with its own batch and the replicas' new values are averaged (`aggregation="mean"`),
    the mean of per-replica statistics rather than the statistics of the global batch.
    A batch of one sample has σ_batch = 0 (torch would give NaN).

    Feed the head the backbone's features *before* L2 normalisation: with unit
    embeddings every ‖z‖ is 1 and the margin no longer adapts. ‖z‖ is then the quality
    score of an embedding (higher is better).

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        margin: float >= 0, m. Defaults to `0.4`.
        h: float >= 0, the concentration of ẑ (about 68% of ẑ fall in [−h, h]). Defaults
            to `0.333`.
        t_alpha: float in (0, 1], α, the EMA momentum of the norm statistics. Defaults to
            `0.01`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[features, labels]` → float32 training logits [B, C];
            `features` → float32 s · cos θ [B, C] for inference.
        training: bool; a training call with labels updates `batch_mean`/`batch_std`.

    Example:

    >>> import numpy as np
    >>> head = AdaFace(num_classes=3)
    >>> features = np.array([[30.0, 0.0], [0.0, 10.0]], "float32")
    >>> head([features, np.array([0, 1])], training=True).shape
    TensorShape([2, 3])
    >>> # μ = 0.01 · 20 + 0.99 · 20; σ = 0.01 · 14.142 + 0.99 · 100 (σ_batch of {30, 10})
    >>> round(float(head.batch_mean.numpy()), 4), round(float(head.batch_std.numpy()), 4)
    (20.0, 99.1414)

    Reference:
        Kim, Jain and Liu, "AdaFace: Quality Adaptive Margin for Face Recognition",
        CVPR 2022, arXiv 2204.00964; mk-minchul/AdaFace `head.py`, `config.py`
        (t_alpha = 0.01) and `scripts/run_ir50_ms1mv2.sh` (m = 0.4, h = 0.333, s = 64).
    """

    def __init__(
        self,
        num_classes,
        scale=64.0,
        margin=0.4,
        h=0.333,
        t_alpha=0.01,
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
        if not margin >= 0:
            raise ValueError(f"`margin` must be >= 0. Received: margin={margin!r}")
        if not h >= 0:
            raise ValueError(f"`h` must be >= 0. Received: h={h!r}")
        if not 0 < t_alpha <= 1:
            raise ValueError(f"`t_alpha` must be in (0, 1]. Received: t_alpha={t_alpha!r}")
        self.margin = float(margin)
        self.h = float(h)
        self.t_alpha = float(t_alpha)

    def build(self, input_shape):
        super().build(input_shape)
        # MEAN: under a strategy the replicas' EMA updates are averaged.
        self.batch_mean = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(_INITIAL_MEAN),
            dtype="float32",
            trainable=False,
            autocast=False,
            aggregation="mean",
            name="batch_mean",
        )
        self.batch_std = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(_INITIAL_STD),
            dtype="float32",
            trainable=False,
            autocast=False,
            aggregation="mean",
            name="batch_std",
        )

    def norm_statistics(self, norms, training=None):
        """(μ, σ) used for this batch; a training call first folds the batch into the EMA."""
        mean = self.batch_mean.value
        std = self.batch_std.value
        if training:
            count = ops.cast(ops.shape(norms)[0], "float32")
            batch_mean = ops.mean(norms)
            squares = ops.sum(ops.square(norms - batch_mean))
            batch_std = ops.sqrt(squares / ops.maximum(count - 1.0, 1.0))
            mean = self.t_alpha * batch_mean + (1.0 - self.t_alpha) * mean
            std = self.t_alpha * batch_std + (1.0 - self.t_alpha) * std
            self.batch_mean.assign(mean)
            self.batch_std.assign(std)
        return mean, std

    def margin_cosines(self, batch):
        norms = ops.stop_gradient(ops.clip(batch.feature_norms, _NORM_MIN, _NORM_MAX))
        mean, std = self.norm_statistics(norms, training=batch.training)
        scaler = ops.clip(self.h * (norms - mean) / (std + _EPS), -1.0, 1.0)
        g_angle = -self.margin * scaler
        g_add = self.margin + self.margin * scaler
        cosine = ops.clip(batch.cos_target, -1.0 + _EPS, 1.0 - _EPS)
        theta = ops.arctan2(safe_sine(cosine), cosine)
        theta_m = ops.clip(theta + g_angle, _EPS, math.pi - _EPS)
        return ops.cos(theta_m) - g_add, batch.cosine

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "h": self.h, "t_alpha": self.t_alpha})
        return config
