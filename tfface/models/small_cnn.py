"""`small_cnn`: a small, fast CNN so the default training run fits on 2 CPU cores."""

import keras
from keras import layers

from tfface.models.registry import register_backbone
from tfface.models.registry import validate_common_args
from tfface.models.registry import validate_rate


def _conv_bn_relu(x, filters, strides, name):
    x = layers.Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


@register_backbone(normalization="insightface")
def small_cnn(
    image_size=64,
    embedding_dim=128,
    widths=(32, 48, 64, 96),
    dropout_rate=0.0,
    name="small_cnn",
):
    """A four-stage conv-BN-ReLU network: a CPU-sized stand-in for the big backbones.

    Each stage is a stride-2 3×3 conv followed by a stride-1 3×3 conv (both conv-BN-ReLU),
    so the feature map shrinks 16× before global average pooling. The head is
    Dropout → Dense (no bias) → BatchNormalization, as in facenet's bottleneck. With the
    default widths it has about 0.26 M parameters.

    Args:
        image_size: input side S (>= 16).
        embedding_dim: output size D.
        widths: channels of the four stages.
        dropout_rate: dropout before the embedding layer, in [0, 1).
        name: model name.

    Example:
    >>> model = small_cnn(image_size=64, embedding_dim=128)
    >>> tuple(model.output.shape)
    (None, 128)
    """
    validate_common_args("small_cnn", image_size, embedding_dim, min_image_size=16)
    validate_rate("small_cnn", "dropout_rate", dropout_rate)
    widths = tuple(widths)
    if not widths or any((not isinstance(w, int)) or w < 1 for w in widths):
        raise ValueError(
            f"`widths` for small_cnn must be a non-empty sequence of positive ints. "
            f"Received: widths={widths!r}"
        )

    # === Functional Model ===
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
    x = inputs
    for i, width in enumerate(widths):
        x = _conv_bn_relu(x, width, strides=2, name=f"stage{i + 1}_down")
        x = _conv_bn_relu(x, width, strides=1, name=f"stage{i + 1}_conv")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = layers.Dense(embedding_dim, use_bias=False, name="embedding")(x)
    # Float32 output even under mixed precision: the heads and triplet losses expect it.
    x = layers.BatchNormalization(epsilon=1e-5, dtype="float32", name="embedding_bn")(x)
    return keras.Model(inputs, x, name=name)
