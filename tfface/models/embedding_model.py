"""`build_embedding_model`: pixels in 0–255 → normalisation → backbone → unit embeddings."""

import keras

from tfface.layers import ImageNormalization
from tfface.layers import L2Normalize
from tfface.models.registry import backbone_normalization
from tfface.models.registry import create_backbone


def build_embedding_model(
    backbone,
    image_size,
    embedding_dim,
    normalization=None,
    return_features=False,
    **backbone_kwargs,
):
    """Wraps a backbone into the model that training, evaluation and export share.

    float32 images [N, S, S, 3] in 0–255 → `tfface.layers.ImageNormalization(normalization)`
    → backbone → `tfface.layers.L2Normalize` → unit-norm embeddings [N, D].

    Args:
        backbone: a registered backbone name (see `tfface.models.list_backbones()`) or a
            `keras.Model` already mapping [N, S, S, 3] to [N, D].
        image_size: input side S.
        embedding_dim: output size D.
        normalization: the `tfface.layers.ImageNormalization` mode: "insightface"
            (((x/255) − 0.5)/0.5), "facenet" ((x − 127.5)/128) or "dlib". Default: the one
            a registered backbone declares (`tfface.models.backbone_normalization`), and
            "insightface" for a `keras.Model` backbone.
        return_features: also output the backbone's unnormalised features: the model maps
            images to `[unit_embeddings, features]` (training heads whose logits scale
            with ‖x‖ read the features; `keras.Model(model.input, model.outputs[0])` is the
            embedding model sharing its layers).
        **backbone_kwargs: forwarded to the backbone factory when `backbone` is a name.

    Example:
    >>> model = build_embedding_model("small_cnn", image_size=64, embedding_dim=32)
    >>> tuple(model.output.shape)
    (None, 32)
    """
    if isinstance(backbone, str):
        net = create_backbone(
            backbone, image_size=image_size, embedding_dim=embedding_dim, **backbone_kwargs
        )
        name = f"{backbone}_embedding"
        if normalization is None:
            normalization = backbone_normalization(backbone)
    elif isinstance(backbone, keras.Model):
        if backbone_kwargs:
            raise ValueError(
                "`backbone_kwargs` only apply when `backbone` is a registered name. "
                f"Received: backbone={backbone.name!r}, backbone_kwargs={backbone_kwargs}"
            )
        net = backbone
        name = f"{backbone.name}_embedding"
        if normalization is None:
            normalization = "insightface"
    else:
        raise ValueError(
            "`backbone` must be a registered backbone name or a keras.Model. "
            f"Received: backbone={backbone!r}"
        )
    expected_in = (None, image_size, image_size, 3)
    if tuple(net.input.shape) != expected_in:
        raise ValueError(
            f"The backbone takes inputs of shape {tuple(net.input.shape)}, but "
            f"`image_size`={image_size} asks for {expected_in}."
        )
    if net.output.shape[-1] != embedding_dim:
        raise ValueError(
            f"The backbone outputs {net.output.shape[-1]}-D embeddings, but "
            f"`embedding_dim`={embedding_dim}."
        )

    # === Functional Model ===
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="pixels")
    x = ImageNormalization(mode=normalization, name="normalization")(inputs)
    features = net(x)
    outputs = L2Normalize(axis=-1, dtype="float32", name="l2_normalize")(features)
    if return_features:
        return keras.Model(inputs, [outputs, features], name=f"{name}_with_features")
    return keras.Model(inputs, outputs, name=name)
