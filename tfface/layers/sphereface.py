"""SphereFace (A-Softmax) head: ‖x‖ · ψ(θ) with ‖W‖ = 1, annealed with λ."""

from tfface.api_export import tfface_export
from tfface.layers.multiplicative_margin import MultiplicativeMargin


@tfface_export("tfface.layers.SphereFace")
class SphereFace(MultiplicativeMargin):
    """Angular softmax: class weights normalised (‖W_j‖ = 1, no bias), features not.

    logit_y = ‖x‖ · (λ cos θ_y + ψ(θ_y)) / (1 + λ), logit_j = ‖x‖ · cos θ_j (j ≠ y), with
    ψ(θ) = (−1)^k cos(mθ) − 2k for θ ∈ [kπ/m, (k+1)π/m] and
    λ = max(λ_min, base · (1 + γ · iteration)^(−power)). The `iteration` weight counts
    training calls and is saved with the layer, so a resumed run continues the schedule.
    Set `base=0, lambda_min=0` for the un-annealed A-Softmax.

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
            `embeddings` → float32 ‖x‖ · cos θ [B, C] for inference.
        training: bool; a training call advances `iteration` by one.

    Example:

    >>> import numpy as np
    >>> head = SphereFace(num_classes=3)
    >>> _ = head([np.ones((2, 4), "float32"), np.array([0, 2])], training=True)
    >>> int(head.iteration.numpy())
    1

    Reference:
        Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition",
        CVPR 2017, arXiv 1704.08063; Caffe `margin_inner_product_layer.cpp`.
    """

    normalize_weights = True
