"""facenet's Inception-ResNet-v1 (davidsandberg/facenet `src/models/inception_resnet_v1.py`).

Stem → 5× block35 → reduction A → 10× block17 → reduction B → 5× block8 plus a final block8
without ReLU (facenet's `Mixed_8b`) → global average pool → dropout → bottleneck dense (no
bias) → BN. As in facenet's slim `arg_scope`, every conv is conv (no bias) → BN (centre,
no scale, eps 1e-3) → ReLU, except the 1×1 "up" projection of each residual block, which
is linear with a bias and no BN.
"""

import keras
from keras import layers

from tfface.models.registry import register_backbone
from tfface.models.registry import validate_common_args
from tfface.models.registry import validate_rate

# slim.batch_norm defaults used by facenet: scale=False, epsilon=0.001, decay 0.995.
_BN_KWARGS = dict(epsilon=1e-3, momentum=0.995, scale=False)


def _conv_bn(x, filters, kernel, name, strides=1, padding="same"):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(
        x
    )
    x = layers.BatchNormalization(**_BN_KWARGS, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual(x, branches, scale, name, activation=True):
    mixed = layers.Concatenate(name=f"{name}_concat")(branches)
    up = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_up")(mixed)
    up = layers.Rescaling(scale, name=f"{name}_scale")(up)
    x = layers.Add(name=f"{name}_add")([x, up])
    if activation:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def _block35(x, scale, name):
    b0 = _conv_bn(x, 32, 1, f"{name}_b0_1x1")
    b1 = _conv_bn(x, 32, 1, f"{name}_b1_1x1")
    b1 = _conv_bn(b1, 32, 3, f"{name}_b1_3x3")
    b2 = _conv_bn(x, 32, 1, f"{name}_b2_1x1")
    b2 = _conv_bn(b2, 32, 3, f"{name}_b2_3x3a")
    b2 = _conv_bn(b2, 32, 3, f"{name}_b2_3x3b")
    return _residual(x, [b0, b1, b2], scale, name)


def _block17(x, scale, name):
    b0 = _conv_bn(x, 128, 1, f"{name}_b0_1x1")
    b1 = _conv_bn(x, 128, 1, f"{name}_b1_1x1")
    b1 = _conv_bn(b1, 128, (1, 7), f"{name}_b1_1x7")
    b1 = _conv_bn(b1, 128, (7, 1), f"{name}_b1_7x1")
    return _residual(x, [b0, b1], scale, name)


def _block8(x, scale, name, activation=True):
    b0 = _conv_bn(x, 192, 1, f"{name}_b0_1x1")
    b1 = _conv_bn(x, 192, 1, f"{name}_b1_1x1")
    b1 = _conv_bn(b1, 192, (1, 3), f"{name}_b1_1x3")
    b1 = _conv_bn(b1, 192, (3, 1), f"{name}_b1_3x1")
    return _residual(x, [b0, b1], scale, name, activation=activation)


def _reduction_a(x, name):
    b0 = _conv_bn(x, 384, 3, f"{name}_b0_3x3", strides=2, padding="valid")
    b1 = _conv_bn(x, 192, 1, f"{name}_b1_1x1")
    b1 = _conv_bn(b1, 192, 3, f"{name}_b1_3x3a")
    b1 = _conv_bn(b1, 256, 3, f"{name}_b1_3x3b", strides=2, padding="valid")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([b0, b1, b2])


def _reduction_b(x, name):
    b0 = _conv_bn(x, 256, 1, f"{name}_b0_1x1")
    b0 = _conv_bn(b0, 384, 3, f"{name}_b0_3x3", strides=2, padding="valid")
    b1 = _conv_bn(x, 256, 1, f"{name}_b1_1x1")
    b1 = _conv_bn(b1, 256, 3, f"{name}_b1_3x3", strides=2, padding="valid")
    b2 = _conv_bn(x, 256, 1, f"{name}_b2_1x1")
    b2 = _conv_bn(b2, 256, 3, f"{name}_b2_3x3a")
    b2 = _conv_bn(b2, 256, 3, f"{name}_b2_3x3b", strides=2, padding="valid")
    b3 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([b0, b1, b2, b3])


def _final_map_size(image_size):
    """Spatial side after the stem and both reductions (valid 3×3 convs/pools)."""

    def valid(s, stride):
        return (s - 3) // stride + 1

    s = valid(image_size, 2)  # Conv2d_1a_3x3
    s = valid(s, 1)  # Conv2d_2a_3x3
    s = valid(s, 2)  # MaxPool_3a_3x3
    s = valid(s, 1)  # Conv2d_4a_3x3
    s = valid(s, 2)  # Conv2d_4b_3x3
    s = valid(s, 2)  # Mixed_6a
    return valid(s, 2)  # Mixed_7a


@register_backbone(normalization="facenet")
def inception_resnet_v1(
    image_size=160, embedding_dim=128, dropout_rate=0.2, name="inception_resnet_v1"
):
    """facenet's Inception-ResNet-v1 embedding network (default input 160×160).

    Args:
        image_size: input side S (>= 75, the smallest input that leaves a 1×1 map after
            reduction B; facenet trains at 160).
        embedding_dim: output size D (facenet: 128 in its 2017 models, 512 in 2018).
        dropout_rate: dropout before the bottleneck; facenet's `keep_probability` 0.8 → 0.2.
        name: model name.

    Reference:
        Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
        Connections on Learning", AAAI 2017; Schroff et al., "FaceNet", CVPR 2015;
        davidsandberg/facenet `src/models/inception_resnet_v1.py`.
    """
    validate_common_args("inception_resnet_v1", image_size, embedding_dim, min_image_size=1)
    validate_rate("inception_resnet_v1", "dropout_rate", dropout_rate)
    if _final_map_size(image_size) < 1:
        raise ValueError(
            "`image_size` for inception_resnet_v1 must be >= 75 so that reduction B "
            f"leaves at least a 1×1 map. Received: image_size={image_size}"
        )

    # === Functional Model ===
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
    x = _conv_bn(inputs, 32, 3, "Conv2d_1a_3x3", strides=2, padding="valid")
    x = _conv_bn(x, 32, 3, "Conv2d_2a_3x3", padding="valid")
    x = _conv_bn(x, 64, 3, "Conv2d_2b_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="MaxPool_3a_3x3")(x)
    x = _conv_bn(x, 80, 1, "Conv2d_3b_1x1", padding="valid")
    x = _conv_bn(x, 192, 3, "Conv2d_4a_3x3", padding="valid")
    x = _conv_bn(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")
    for i in range(5):
        x = _block35(x, 0.17, name=f"Repeat_block35_{i + 1}")
    x = _reduction_a(x, name="Mixed_6a")
    for i in range(10):
        x = _block17(x, 0.10, name=f"Repeat_1_block17_{i + 1}")
    x = _reduction_b(x, name="Mixed_7a")
    for i in range(5):
        x = _block8(x, 0.20, name=f"Repeat_2_block8_{i + 1}")
    x = _block8(x, 1.0, name="Mixed_8b", activation=False)
    x = layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = layers.Dropout(dropout_rate, name="Dropout")(x)
    x = layers.Dense(embedding_dim, use_bias=False, name="Bottleneck")(x)
    x = layers.BatchNormalization(**_BN_KWARGS, dtype="float32", name="Bottleneck_bn")(x)
    return keras.Model(inputs, x, name=name)
