"""Pairwise distance matrices for metric-learning losses, with tfa-compatible numerics.

Every function maps float embeddings [B, D] to a float32 distance matrix [B, B]. The three
named metrics reproduce `tensorflow_addons.losses.metric_learning` exactly (same clamping,
same zeroed diagonal), because `tfface.losses` is held to tfa parity; the L2 square root
is made gradient-safe where the squared distance is zero, so duplicate embeddings give
zero gradients instead of NaN.
"""

import keras
from keras import ops

DISTANCE_METRICS = ("L2", "squared-L2", "angular")


def pairwise_distance(embeddings, squared=False):
    """Euclidean (or squared Euclidean) distance between every pair of rows.

    Args:
        embeddings: float tensor [B, D].
        squared: return ‖x_i − x_j‖² instead of ‖x_i − x_j‖.

    Returns:
        float32 tensor [B, B] with an exact zero diagonal.
    """
    x = ops.cast(embeddings, "float32")
    sq_norms = ops.sum(ops.square(x), axis=1)
    dist_sq = sq_norms[:, None] + sq_norms[None, :] - 2.0 * ops.matmul(x, ops.transpose(x))
    # The expansion can go slightly negative through cancellation; such entries are zeros.
    dist_sq = ops.maximum(dist_sq, 0.0)
    zero = dist_sq <= 0.0
    if squared:
        dist = dist_sq
    else:
        # sqrt has an infinite derivative at 0: feed it 1 there and select 0 afterwards,
        # so the backward pass multiplies a finite number by a zero mask.
        dist = ops.where(zero, 0.0, ops.sqrt(ops.where(zero, 1.0, dist_sq)))
    num = ops.shape(x)[0]
    return ops.where(ops.eye(num, dtype="bool"), 0.0, ops.where(zero, 0.0, dist))


def angular_distance(embeddings):
    """1 − cosine similarity of the L2-normalised rows, clamped at 0 (as tfa; diagonal ≈ 0).

    Args:
        embeddings: float tensor [B, D]; rows need not be normalised.

    Returns:
        float32 tensor [B, B].
    """
    x = ops.cast(embeddings, "float32")
    # Same normalisation as tf.math.l2_normalize (epsilon 1e-12 on the squared norm).
    x = x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=1, keepdims=True), 1e-12))
    return ops.maximum(1.0 - ops.matmul(x, ops.transpose(x)), 0.0)


def get(identifier):
    """Returns a function embeddings [B, D] → float32 distances [B, B].

    Args:
        identifier: "L2", "squared-L2", "angular", or a callable taking the float32
            embeddings and returning a [B, B] distance matrix.
    """
    if callable(identifier):

        def custom(embeddings):
            dist = identifier(embeddings)
            if len(dist.shape) != 2:
                raise ValueError(
                    "A callable `distance_metric` must return a [batch, batch] matrix. "
                    f"Received: shape={tuple(dist.shape)} from distance_metric={identifier!r}"
                )
            return ops.cast(dist, "float32")

        return custom
    if identifier == "L2":
        return lambda x: pairwise_distance(x, squared=False)
    if identifier == "squared-L2":
        return lambda x: pairwise_distance(x, squared=True)
    if identifier == "angular":
        return angular_distance
    raise ValueError(
        f"`distance_metric` must be one of {DISTANCE_METRICS} or a callable. "
        f"Received: distance_metric={identifier!r}"
    )


def serialize(identifier):
    """Config form of a distance metric: the string itself, or a serialized callable."""
    if isinstance(identifier, str):
        get(identifier)
        return identifier
    return keras.saving.serialize_keras_object(identifier)


def deserialize(config):
    """Inverse of `serialize`: a dict config becomes the registered callable again."""
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config
