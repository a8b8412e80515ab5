"""insightface's ArcFace IResNet backbones (`iresnet50`, `iresnet100`).

Follows `recognition/arcface_torch/backbones/iresnet.py`: a 3×3 stem (conv-BN-PReLU), four
stages of IBasicBlocks (BN → 3×3 conv → BN → PReLU → 3×3 conv with the stride → BN, plus a
1×1 conv-BN shortcut when the shape changes) and the "BN-Dropout-FC-BN" embedding head on
the flattened 7×7 map (for 112×112 inputs). Padding is explicit (1 pixel each side, then a
valid conv) rather than Keras "same": for a stride-2 conv on an even input, "same" pads only
the bottom/right, which would shift features relative to the PyTorch reference and make
ported weights disagree.
"""

import keras
from keras import layers

from tfface.models.registry import register_backbone
from tfface.models.registry import validate_common_args
from tfface.models.registry import validate_rate

# PyTorch BatchNorm's eps; momentum 0.9 in Keras convention equals PyTorch's 0.1.
_BN_EPS = 1e-5
_STAGE_WIDTHS = (64, 128, 256, 512)


def _prelu(name):
    # PyTorch's nn.PReLU(C) starts at 0.25 with one slope per channel.
    return layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name
    )


def _conv3x3(x, filters, strides, name):
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=name)(x)


def _ibasic_block(x, filters, strides, name):
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters, 1, strides=strides, use_bias=False, name=f"{name}_downsample_conv"
        )(x)
        shortcut = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_downsample_bn")(
            shortcut
        )
    y = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_bn1")(x)
    y = _conv3x3(y, filters, 1, name=f"{name}_conv1")
    y = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_bn2")(y)
    y = _prelu(f"{name}_prelu")(y)
    y = _conv3x3(y, filters, strides, name=f"{name}_conv2")
    y = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_bn3")(y)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def build_iresnet(
    stage_depths, image_size=112, embedding_dim=512, dropout_rate=0.0, name="iresnet"
):
    """Builds an IResNet with `stage_depths` IBasicBlocks in its four stages.

    Args:
        stage_depths: blocks per stage, e.g. (3, 4, 14, 3) for IResNet-50.
        image_size: input side S, a multiple of 16 (112 gives insightface's 7×7 map).
        embedding_dim: output size D (insightface uses 512).
        dropout_rate: dropout between the final BN and the FC layer (arcface_torch: 0).
        name: model name.
    """
    validate_common_args(name, image_size, embedding_dim, min_image_size=16)
    validate_rate(name, "dropout_rate", dropout_rate)
    if image_size % 16:
        raise ValueError(
            f"`image_size` for {name} must be a multiple of 16 (four stride-2 stages; 112 "
            f"gives the 7×7 map of insightface). Received: image_size={image_size}"
        )
    stage_depths = tuple(stage_depths)
    if len(stage_depths) != 4 or any(not isinstance(d, int) or d < 1 for d in stage_depths):
        raise ValueError(
            f"`stage_depths` must be four positive ints. Received: stage_depths={stage_depths}"
        )

    # === Functional Model ===
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
    x = _conv3x3(inputs, 64, 1, name="stem_conv")
    x = layers.BatchNormalization(epsilon=_BN_EPS, name="stem_bn")(x)
    x = _prelu("stem_prelu")(x)
    for stage, (depth, width) in enumerate(zip(stage_depths, _STAGE_WIDTHS, strict=True)):
        for block in range(depth):
            x = _ibasic_block(
                x, width, strides=2 if block == 0 else 1, name=f"stage{stage + 1}_block{block}"
            )
    x = layers.BatchNormalization(epsilon=_BN_EPS, name="head_bn")(x)
    x = layers.Dropout(dropout_rate, name="head_dropout")(x)
    x = layers.Flatten(name="head_flatten")(x)
    x = layers.Dense(embedding_dim, name="head_fc")(x)
    # insightface freezes this BN's scale at 1 (`features.weight.requires_grad = False`):
    # scale=False is the same function with one parameter vector fewer.
    x = layers.BatchNormalization(
        epsilon=_BN_EPS, scale=False, dtype="float32", name="embedding_bn"
    )(x)
    return keras.Model(inputs, x, name=name)


@register_backbone(normalization="insightface")
def iresnet50(image_size=112, embedding_dim=128, dropout_rate=0.0, name="iresnet50"):
    """IResNet-50 ([3, 4, 14, 3] IBasicBlocks): insightface's ArcFace R50 backbone.

    Args:
        image_size: input side S, a multiple of 16.
        embedding_dim: output size D (insightface: 512).
        dropout_rate: dropout before the FC layer.
        name: model name.

    Reference:
        Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
        CVPR 2019; insightface `recognition/arcface_torch/backbones/iresnet.py`.
    """
    return build_iresnet((3, 4, 14, 3), image_size, embedding_dim, dropout_rate, name=name)


@register_backbone(normalization="insightface")
def iresnet100(image_size=112, embedding_dim=128, dropout_rate=0.0, name="iresnet100"):
    """IResNet-100 ([3, 13, 30, 3] IBasicBlocks): insightface's ArcFace R100 backbone.

    Args:
        image_size: input side S, a multiple of 16.
        embedding_dim: output size D (insightface: 512).
        dropout_rate: dropout before the FC layer.
        name: model name.

    Reference:
        Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
        CVPR 2019; insightface `recognition/arcface_torch/backbones/iresnet.py`.
    """
    return build_iresnet((3, 13, 30, 3), image_size, embedding_dim, dropout_rate, name=name)
