"""CosFace / AM-Softmax head: s · (cos θ − m) on the target class."""

from tfface.api_export import tfface_export
from tfface.layers.margin_softmax import MarginSoftmax


@tfface_export("tfface.layers.CosFace")
class CosFace(MarginSoftmax):
    """Additive cosine margin: logit_y = s · (cos θ_y − m), logit_j = s · cos θ_j (j ≠ y).

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        margin: float >= 0, m. Defaults to `0.35`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[embeddings, labels]` → float32 training logits [B, C];
            `embeddings` → float32 s · cos θ [B, C] for inference.
        training: unused.

    Example:

    >>> import numpy as np
    >>> head = CosFace(num_classes=3)
    >>> head([np.ones((2, 4), "float32"), np.array([0, 2])]).shape
    TensorShape([2, 3])

    Reference:
        Wang et al., "CosFace: Large Margin Cosine Loss", CVPR 2018, arXiv 1801.09414;
        Wang et al., "Additive Margin Softmax", arXiv 1801.05599.
    """

    def __init__(
        self,
        num_classes,
        scale=64.0,
        margin=0.35,
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
        self.margin = float(margin)

    def apply_margin(self, cos_target, training=None):
        return cos_target - self.margin

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin})
        return config
