"""Analytic multiply-accumulate (MAC) counts for functional backbones.

Only layers that multiply weights with activations are counted (Conv2D, DepthwiseConv2D,
Dense); BN, activations, additions and pooling are ignored, which is the convention of
the MobileFaceNet and insightface tables ("MAdds", "FLOPs" = MACs in arcface_torch's
README). FLOPs in the 2-per-MAC sense are `2 * count_macs(model)`.
"""

import math

import keras


def _layer_macs(layer):
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        _, h, w, c = layer.output.shape
        kh, kw = layer.kernel_size
        return h * w * c * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        c_in = layer.input.shape[-1]
        kh, kw = layer.kernel_size
        return h * w * c_out * kh * kw * (c_in // layer.groups)
    if isinstance(layer, keras.layers.Dense):
        # Leading dims beyond the batch multiply the work (Dense on [N, T, C]).
        leading = math.prod(layer.output.shape[1:-1])
        return leading * layer.input.shape[-1] * layer.units
    return 0


def count_macs(model):
    """Multiply-accumulates for one image through `model` (nested models included).

    Args:
        model: a built functional `keras.Model` with static spatial input shape.

    Returns:
        int, MACs per example.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
        else:
            total += _layer_macs(layer)
    return int(total)
