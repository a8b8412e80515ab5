"""Triplet loss with semi-hard negative mining (FaceNet), tfa-compatible, O(B²) memory."""

from keras import ops

from tfface.api_export import tfface_export
from tfface.losses import mining
from tfface.losses.triplet_loss_base import TripletLossBase


@tfface_export("tfface.losses.triplet_semihard_loss", serializable=True)
def triplet_semihard_loss(labels, embeddings, margin=1.0, distance_metric="L2", return_stats=False):
    """Semi-hard triplet loss with the semantics of `tfa.losses.triplet_semihard_loss`.

    For every (anchor, positive) pair with a ≠ p and the same label, the negative is the
    one with the smallest d(a, n) strictly greater than d(a, p); when there is none, the
    largest d(a, n) among the anchor's negatives (the row minimum, i.e. d(a, a), when the
    anchor has no negative at all, as tfa). Loss = Σ relu(margin + d(a,p) − d(a,n)) divided
    by the number of positive pairs; 0 (with zero gradients) when there is no positive pair,
    where tfa returns NaN.

    Memory is O(B²) (tfa tiles a [B², B] matrix): each anchor's positives are packed into
    [B, K] columns; for K <= 16 the negatives are scanned once per column (O(B²·K) time),
    otherwise each anchor's negatives are sorted once and d(a, p) is binary-searched in
    them (O(B² log B) time). See `mining.semihard_negatives`.

    Args:
        labels: int tensor [B] or [B, 1].
        embeddings: float tensor [B, D] (float16 is computed in float32).
        margin: float >= 0.
        distance_metric: "L2", "squared-L2", "angular" or a callable embeddings → [B, B].
        return_stats: also return {"positive_pairs": int32, "active_fraction": float32},
            the number of (a, p) pairs and the fraction of mined triplets with loss > 0.

    Returns:
        float32 scalar, or (scalar, stats) with `return_stats=True`.
    """
    mining.check_margin(margin)
    labels, dist = mining.prepare(labels, embeddings, distance_metric)
    positive, negative = mining.pair_masks(labels)

    # [positives packed to [B, K]; their semi-hard negatives, by scan or sort+search]
    pos_dist, valid = mining.positive_columns(dist, positive)
    neg_dist = mining.semihard_negatives(dist, negative, pos_dist)

    # [loss over positive pairs]
    per_pair = ops.where(valid, ops.relu(margin + pos_dist - neg_dist), 0.0)
    num_pairs = ops.sum(ops.cast(positive, "int32"))
    loss = ops.divide_no_nan(ops.sum(per_pair), ops.cast(num_pairs, "float32"))
    if not return_stats:
        return loss
    active = ops.sum(ops.cast(per_pair > 0.0, "float32"))
    return loss, {
        "positive_pairs": num_pairs,
        "active_fraction": ops.divide_no_nan(active, ops.cast(num_pairs, "float32")),
    }


@tfface_export("tfface.losses.TripletSemiHardLoss")
class TripletSemiHardLoss(TripletLossBase):
    """Triplet loss with semi-hard negative mining inside the batch (FaceNet; tfa parity).

    Args:
        margin: float >= 0, the margin α in relu(α + d(a,p) − d(a,n)). Defaults to 1.0.
        distance_metric: "L2", "squared-L2", "angular" or a registered callable
            embeddings → [B, B] distances. Defaults to "L2".
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
    >>> loss = tfface.losses.TripletSemiHardLoss(margin=1.0)
    >>> labels = np.array([0, 0])
    >>> emb = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
    >>> round(float(loss(labels, emb)), 4)  # no negative: d(a,n) falls back to d(a,a)=0
    2.4142

    Reference:
        Schroff et al., FaceNet, https://arxiv.org/abs/1503.03832;
        `tfa.losses.TripletSemiHardLoss` (tensorflow-addons 0.23).
    """

    loss_fn = staticmethod(triplet_semihard_loss)
