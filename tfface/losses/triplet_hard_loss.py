"""Batch-hard triplet loss (Hermans et al.), tfa-compatible except for anchors without a
positive, which are excluded instead of averaged in."""

from keras import ops

from tfface.api_export import tfface_export
from tfface.losses import mining
from tfface.losses.triplet_loss_base import SoftTripletLossBase


@tfface_export("tfface.losses.triplet_hard_loss", serializable=True)
def triplet_hard_loss(
    labels, embeddings, margin=1.0, soft=False, distance_metric="L2", return_stats=False
):
    """Hardest positive and hardest negative per anchor, averaged over anchors.

    Per anchor: l = relu(max_p d(a,p) − min_n d(a,n) + margin), or with `soft=True`
    log(1 + exp(max_p d(a,p) − min_n d(a,n))) (no margin, as tfa). An anchor without a
    negative uses the row maximum, as tfa. Deliberate difference from tfa: anchors with no
    positive in the batch are excluded from the mean (tfa averages a hinge on
    relu(margin − min_n d(a,n)) for them, pushing singletons away from everything); a batch
    without any positive pair gives 0 with zero gradients.

    Args:
        labels: int tensor [B] or [B, 1].
        embeddings: float tensor [B, D] (float16 is computed in float32).
        margin: float >= 0 (unused when `soft=True`).
        soft: use the soft-margin softplus instead of the hinge.
        distance_metric: "L2", "squared-L2", "angular" or a callable embeddings → [B, B].
        return_stats: also return {"positive_pairs": int32, "active_fraction": float32};
            the fraction is over the mined triplets (one per anchor that has a positive).

    Returns:
        float32 scalar, or (scalar, stats) with `return_stats=True`.
    """
    mining.check_margin(margin)
    labels, dist = mining.prepare(labels, embeddings, distance_metric)
    positive, negative = mining.pair_masks(labels)

    # [hardest positive / hardest negative per anchor]
    hardest_pos = mining.masked_max(dist, positive)
    hardest_neg = mining.masked_min(dist, negative)
    gap = hardest_pos - hardest_neg
    per_anchor = ops.softplus(gap) if soft else ops.relu(gap + margin)

    # [mean over anchors that have a positive]
    has_pos = ops.any(positive, axis=1)
    num_anchors = ops.sum(ops.cast(has_pos, "float32"))
    per_anchor = ops.where(has_pos, per_anchor, 0.0)
    loss = ops.divide_no_nan(ops.sum(per_anchor), num_anchors)
    if not return_stats:
        return loss
    active = ops.sum(ops.cast(ops.logical_and(has_pos, per_anchor > 0.0), "float32"))
    return loss, {
        "positive_pairs": ops.sum(ops.cast(positive, "int32")),
        "active_fraction": ops.divide_no_nan(active, num_anchors),
    }


@tfface_export("tfface.losses.TripletHardLoss")
class TripletHardLoss(SoftTripletLossBase):
    """Batch-hard triplet loss: hardest positive and hardest negative of every anchor.

    Anchors without a positive in the batch are left out of the mean (tfa counts them).

    Args:
        margin: float >= 0. Defaults to 1.0. Unused when `soft=True`.
        soft: bool, soft-margin log(1 + exp(·)) instead of the hinge. Defaults to False.
        distance_metric: "L2", "squared-L2", "angular" or a registered callable.
        name: optional loss name.
        reduction: "sum_over_batch_size" (default), "mean" or "sum": the loss is already
            one scalar per batch, so all three give it; per-sample reductions are rejected.
        dtype: dtype or policy of the returned loss (its compute dtype); mining runs in
            float32. Defaults to `keras.backend.floatx()`.

    Call arguments:
        y_true: int labels [B] or [B, 1].
        y_pred: embeddings [B, D].

    Example:
    >>> import numpy as np, tfface
    >>> loss = tfface.losses.TripletHardLoss(margin=2.0)
    >>> labels = np.array([0, 0, 1])
    >>> emb = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], "float32")
    >>> round(float(loss(labels, emb)), 4)  # (relu(3 - 4 + 2) + relu(3 - 5 + 2)) / 2
    0.5

    Reference:
        Hermans et al., In Defense of the Triplet Loss, https://arxiv.org/abs/1703.07737;
        `tfa.losses.TripletHardLoss` (tensorflow-addons 0.23).
    """

    loss_fn = staticmethod(triplet_hard_loss)
