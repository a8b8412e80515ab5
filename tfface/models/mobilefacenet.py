"""MobileFaceNet (Chen et al. 2018): depthwise bottlenecks with a global depthwise head."""

import keras
from keras import layers

from tfface.models.registry import register_backbone
from tfface.models.registry import validate_common_args

# Table 1 of the paper: (expansion t, output channels c, repeats n, first stride s).
_BOTTLENECKS = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)
_BN_EPS = 1e-5
# Keras's default Glorot init counts a depthwise kernel's fan-in as C·k·k although each
# output sees only k·k inputs, which shrinks activations by ~sqrt(C) per depthwise layer
# (outputs ~1e-8 after 17 of them at inference). He init on the true fan (k·k) keeps them
# O(1), as PyTorch's per-group fan computation does.
_DEPTHWISE_INIT = keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


def _prelu(name):
    return layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name
    )


def _conv_bn(x, filters, kernel, strides, name, depthwise=False, activation=True):
    # Explicit symmetric padding (as in the Caffe/PyTorch references) rather than "same",
    # which pads only bottom/right for stride 2 on even inputs.
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    if depthwise:
        x = layers.DepthwiseConv2D(
            kernel,
            strides=strides,
            use_bias=False,
            depthwise_initializer=_DEPTHWISE_INIT,
            name=name,
        )(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=strides, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_bn")(x)
    if activation:
        x = _prelu(f"{name}_prelu")(x)
    return x


def _bottleneck(x, expansion, filters, strides, name):
    inputs = x
    x = _conv_bn(x, x.shape[-1] * expansion, 1, 1, name=f"{name}_expand")
    x = _conv_bn(x, None, 3, strides, name=f"{name}_dw", depthwise=True)
    # Linear projection: no non-linearity on the narrow output (MobileNetV2).
    x = _conv_bn(x, filters, 1, 1, name=f"{name}_project", activation=False)
    if strides == 1 and inputs.shape[-1] == filters:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


@register_backbone(normalization="insightface")
def mobilefacenet(image_size=112, embedding_dim=128, name="mobilefacenet"):
    """MobileFaceNet: about 1 M parameters and 0.45 GFLOPs at 112×112 with 128-D output.

    Layers as in Table 1 of the paper: conv3×3/2 (64) → depthwise conv3×3 (64) → five groups
    of MobileNetV2 bottlenecks (expand 1×1 → depthwise 3×3 → linear 1×1, residual when the
    shape is kept) → conv1×1 (512) → linear global depthwise conv (GDC) over the whole
    S/16 × S/16 map → linear conv1×1 to `embedding_dim` → BN. Every non-linearity is PReLU.
    The GDC kernel equals the final map size, so other input sizes (multiples of 16) work.

    Args:
        image_size: input side S, a multiple of 16 (112 gives the paper's 7×7 GDC).
        embedding_dim: output size D (paper: 128).
        name: model name.

    Reference:
        Chen, Liu, Gao, Han, "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
        Verification on Mobile Devices", CCBR 2018, arXiv:1804.07573.
    """
    validate_common_args("mobilefacenet", image_size, embedding_dim, min_image_size=16)
    if image_size % 16:
        raise ValueError(
            "`image_size` for mobilefacenet must be a multiple of 16 (four stride-2 steps "
            f"before the global depthwise conv). Received: image_size={image_size}"
        )

    # === Functional Model ===
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
    x = _conv_bn(inputs, 64, 3, 2, name="conv1")
    x = _conv_bn(x, None, 3, 1, name="conv2_dw", depthwise=True)
    for group, (expansion, filters, repeats, strides) in enumerate(_BOTTLENECKS):
        for i in range(repeats):
            x = _bottleneck(
                x, expansion, filters, strides if i == 0 else 1, name=f"bottleneck{group}_{i}"
            )
    x = _conv_bn(x, 512, 1, 1, name="conv_last")
    x = layers.DepthwiseConv2D(
        x.shape[1], use_bias=False, depthwise_initializer=_DEPTHWISE_INIT, name="gdc"
    )(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name="gdc_bn")(x)
    x = layers.Conv2D(embedding_dim, 1, use_bias=False, name="embedding_conv")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, dtype="float32", name="embedding_bn")(x)
    return keras.Model(inputs, x, name=name)
