"""ElasticFace-Cos head: s · (cos θ − m_i) on the target class, m_i ~ N(m, σ) per sample."""

from tfface.api_export import tfface_export
from tfface.layers.elastic_margin import ElasticMargin


@tfface_export("tfface.layers.ElasticCosFace")
class ElasticCosFace(ElasticMargin):
    """Elastic cosine margin: logit_y = s · (cos θ_y − m_i), m_i ~ N(m, σ), logit_j = s · cos θ_j.

    A training call draws one margin per sample (see `ElasticMargin`: seeded
    `keras.random.SeedGenerator`, `plus=True` for ElasticFace+, which sorts the margins
    by difficulty); other calls use m, which makes the head CosFace at inference and
    evaluation.

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        margin: float >= 0, the mean m. Defaults to `0.35`.
        std: float >= 0, σ. Defaults to `0.05` (the official ElasticFace-Cos setting;
            ElasticFace-Cos+ uses `plus=True, std=0.02`).
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
    >>> head = ElasticCosFace(num_classes=2, scale=1.0, std=0.0)
    >>> head.build((None, 2))
    >>> _ = head.kernel.assign(np.eye(2, dtype="float32"))
    >>> np.asarray(head([np.array([[1.0, 0.0]], "float32"), np.array([0])], training=True))
    array([[0.65, 0.  ]], dtype=float32)

    Reference:
        Boutros et al., "ElasticFace: Elastic Margin Loss for Deep Face Recognition",
        CVPRW 2022, arXiv 2109.09416; fdbtrs/ElasticFace `utils/losses.py` and
        `config/config.py` (s = 64, m = 0.35, σ = 0.05; Cos+: σ = 0.02).
    """

    def __init__(
        self,
        num_classes,
        scale=64.0,
        margin=0.35,
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
        return cos_target - margins
