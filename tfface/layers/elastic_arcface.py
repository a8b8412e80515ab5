"""ElasticFace-Arc head: s · cos(θ + m_i) on the target class, m_i ~ N(m, σ) per sample."""

from keras import ops

from tfface.api_export import tfface_export
from tfface.layers.elastic_margin import ElasticMargin
from tfface.layers.margin_softmax import safe_sine


@tfface_export("tfface.layers.ElasticArcFace")
class ElasticArcFace(ElasticMargin):
    """Elastic angular margin: logit_y = s · cos(θ_y + m_i), m_i ~ N(m, σ), logit_j = s · cos θ_j.

    A training call draws one margin per sample (see `ElasticMargin`: seeded
    `keras.random.SeedGenerator`, `plus=True` for ElasticFace+, which sorts the margins
    by difficulty); other calls use m. cos(θ + m_i) is computed as
    cos θ · cos m_i − sin θ · sin m_i with the gradient-safe sin θ of `ArcFace`. As in the
    official code there is no fallback past θ_y + m_i = π (unlike `ArcFace`): there the
    target cosine rises again with θ_y.

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        margin: float >= 0, the mean m. Defaults to `0.5`.
        std: float >= 0, σ. Defaults to `0.05` (the official ElasticFace-Arc setting;
            ElasticFace-Arc+ uses `plus=True, std=0.0175`).
        plus: bool, ElasticFace+. Defaults to `False`.
        seed: int or None, seed of the margin draws. Defaults to `None`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[embeddings, labels]` → float32 training logits [B, C];
            `embeddings` → float32 s · cos θ [B, C] for inference.
        training: bool; True draws the margins, otherwise every sample uses m.

    Example:

    >>> import numpy as np
    >>> head = ElasticArcFace(num_classes=3, seed=1)
    >>> head([np.ones((2, 4), "float32"), np.array([0, 2])], training=True).shape
    TensorShape([2, 3])
    >>> # The same seed draws the same margins (one per sample, around m = 0.5).
    >>> cos_target = np.zeros(4, "float32")
    >>> a = ElasticArcFace(num_classes=3, seed=7).sample_margins(cos_target)
    >>> b = ElasticArcFace(num_classes=3, seed=7).sample_margins(cos_target)
    >>> bool(np.array_equal(a, b)), bool(np.all(np.abs(np.asarray(a) - 0.5) < 0.5))
    (True, True)

    Reference:
        Boutros et al., "ElasticFace: Elastic Margin Loss for Deep Face Recognition",
        CVPRW 2022, arXiv 2109.09416; fdbtrs/ElasticFace `utils/losses.py` and
        `config/config.py` (s = 64, m = 0.5, σ = 0.05; Arc+: σ = 0.0175).
    """

    def __init__(
        self,
        num_classes,
        scale=64.0,
        margin=0.5,
        std=0.05,
        plus=False,
        seed=None,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            num_classes,
            scale=scale,
            margin=margin,
            std=std,
            plus=plus,
            seed=seed,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            **kwargs,
        )

    def elastic_target(self, cos_target, margins):
        return cos_target * ops.cos(margins) - safe_sine(cos_target) * ops.sin(margins)
