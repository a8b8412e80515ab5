"""L-Softmax head: ‖W_j‖ · ‖x‖ · ψ(θ), neither features nor weights normalised."""

from tfface.api_export import tfface_export
from tfface.layers.multiplicative_margin import MultiplicativeMargin


@tfface_export("tfface.layers.LSoftmax")
class LSoftmax(MultiplicativeMargin):
    """Large-margin softmax: logit_y = ‖W_y‖ ‖x‖ (λ cos θ_y + ψ(θ_y)) / (1 + λ),
    logit_j = ‖W_j‖ ‖x‖ cos θ_j = W_jᵀ x (j ≠ y), bias 0.

    Same ψ and λ schedule as `SphereFace` (shared through `MultiplicativeMargin`); the only
    difference is that class weights keep their norm.

    Args:
        num_classes: int >= 1, number of identities C.
        margin: int >= 1, m. Defaults to `4`.
        base: float >= 0, λ at iteration 0. Defaults to `1000.0`.
        gamma: float >= 0, γ. Defaults to `0.12`.
        power: float >= 0. Defaults to `1.0`.
        lambda_min: float >= 0, floor of λ. Defaults to `5.0`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[embeddings, labels]` → float32 training logits [B, C];
            `embeddings` → float32 xᵀW [B, C] for inference.
        training: bool; a training call advances `iteration` by one.

    Example:

    >>> import numpy as np
    >>> head = LSoftmax(num_classes=3, margin=2)
    >>> head([np.ones((2, 4), "float32"), np.array([0, 2])]).shape
    TensorShape([2, 3])

    Reference:
        Liu et al., "Large-Margin Softmax Loss for Convolutional Neural Networks",
        ICML 2016, arXiv 1612.02295.
    """

    normalize_weights = False
