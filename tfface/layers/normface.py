"""NormFace / L2-softmax head: s · cos θ, no margin."""

from tfface.api_export import tfface_export
from tfface.layers.margin_softmax import MarginSoftmax


@tfface_export("tfface.layers.NormFace")
class NormFace(MarginSoftmax):
    """Normalised softmax head: logit_j = s · cos θ_j for every class, no margin.

    Features and class weights are L2-normalised, so the logit depends only on the angle;
    `s` sets the softmax temperature (the NormFace paper shows a fixed s is needed for the
    loss to go below its lower bound). The default s = 64 matches the margin heads, so
    switching heads changes only the margin.

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[embeddings, labels]` → float32 training logits [B, C];
            `embeddings` → float32 s · cos θ [B, C] (the same values: no margin).
        training: unused.

    Example:

    >>> import numpy as np
    >>> head = NormFace(num_classes=3, scale=10.0)
    >>> head(np.ones((2, 4), "float32")).shape
    TensorShape([2, 3])

    Reference:
        Wang et al., "NormFace: L2 Hypersphere Embedding for Face Verification", ACM MM 2017;
        Ranjan et al., "L2-constrained Softmax Loss", arXiv 1703.09507.
    """

    def __init__(
        self,
        num_classes,
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

    def apply_margin(self, cos_target, training=None):
        return cos_target
