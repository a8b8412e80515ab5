"""Batch-all triplet loss: every valid (anchor, positive, negative) triplet, O(B²) memory."""

from keras import ops

from tfface.api_export import tfface_export
from tfface.losses import mining
from tfface.losses.triplet_loss_base import SoftTripletLossBase


@tfface_export("tfface.losses.triplet_batch_all_loss", serializable=True)
def triplet_batch_all_loss(
    labels, embeddings, margin=1.0, soft=False, distance_metric="L2", return_stats=False
):
    """Mean loss over the active triplets among all valid (a, p, n) in the batch.

    Hinge (`soft=False`): Σ_{a,p,n} relu(margin + d(a,p) − d(a,n)) divided by the number of
    triplets with a positive loss (Hermans et al.'s "batch all"); 0 when none is active.
    Without materialising the B³ triplets: each anchor's negative distances are sorted once
    with prefix sums S; for a pair (a, p) with t = margin + d(a,p), the c negatives closer
    than t (a binary search) contribute c·t − S[c]. O(B² log B) time, O(B²) memory.

    Soft (`soft=True`): Σ softplus(d(a,p) − d(a,n)) over all valid triplets divided by
    their number (every triplet is active; no margin, like tfa's soft hard loss). softplus
    has no prefix-sum form, so this path loops over anchors (accumulating the analytic
    gradient as it goes): O(B²) memory but O(B³) time.

    Args:
        labels: int tensor [B] or [B, 1].
        embeddings: float tensor [B, D] (float16 is computed in float32).
        margin: float >= 0 (unused when `soft=True`).
        soft: soft-margin softplus instead of the hinge.
        distance_metric: "L2", "squared-L2", "angular" or a callable embeddings → [B, B].
        return_stats: also return {"positive_pairs": int32, "active_fraction": float32},
            the fraction over all valid triplets.

    Returns:
        float32 scalar, or (scalar, stats) with `return_stats=True`.
    """
    mining.check_margin(margin)
    labels, dist = mining.prepare(labels, embeddings, distance_metric)
    positive, negative = mining.pair_masks(labels)
    num_pairs = ops.sum(ops.cast(positive, "int32"))
    num_pos_f = ops.sum(ops.cast(positive, "float32"), axis=1)
    num_neg_f = ops.sum(ops.cast(negative, "float32"), axis=1)
    num_triplets = ops.sum(num_pos_f * num_neg_f)

    if soft:
        total = _soft_total(dist, positive, negative)
        num_active = num_triplets
    else:
        # [negatives sorted once per anchor, with prefix sums that carry the gradient]
        order, sorted_neg, _ = mining.sort_rows(dist, negative)
        sorted_dist = mining.take_rows(ops.where(negative, dist, 0.0), order)
        prefix = ops.pad(ops.cumsum(sorted_dist, axis=1), [[0, 0], [1, 0]])

        # [for every (a, p): negatives with d(a,n) < margin + d(a,p)]
        pos_dist, valid = mining.positive_columns(dist, positive)
        threshold = margin + pos_dist
        closer = mining.searchsorted_rows(sorted_neg, threshold, side="left")
        closer = ops.where(valid, closer, 0)
        per_pair = ops.cast(closer, "float32") * threshold - mining.take_rows(prefix, closer)
        total = ops.sum(ops.where(valid, per_pair, 0.0))
        num_active = ops.sum(ops.cast(closer, "float32"))

    loss = ops.divide_no_nan(total, num_active)
    if not return_stats:
        return loss
    return loss, {
        "positive_pairs": num_pairs,
        "active_fraction": ops.divide_no_nan(num_active, num_triplets),
    }


def _soft_total(dist, positive, negative):
    """Σ_{a,p,n} softplus(d(a,p) − d(a,n)), one anchor per loop step ([B, B] per step).

    The loop sees no gradient: it also accumulates the analytic gradient d total / d dist
    (σ(d(a,p) − d(a,n)) summed over n for a positive column, minus the sum over p for a
    negative column), which is attached afterwards as total + Σ G·(dist − sg(dist)). A
    differentiated while loop would instead keep every step's [B, B] activations, B³ in all.
    """
    dist_sg = ops.stop_gradient(dist)
    pos_f = ops.cast(positive, "float32")
    neg_f = ops.cast(negative, "float32")
    rows = ops.arange(ops.shape(dist)[0], dtype="int32")[:, None]

    def body(a, carry):
        total, grad = carry
        row = dist_sg[a]
        gap = row[:, None] - row[None, :]
        weight = pos_f[a][:, None] * neg_f[a][None, :]
        total = total + ops.sum(ops.softplus(gap) * weight)
        slope = ops.sigmoid(gap) * weight
        grad_row = ops.sum(slope, axis=1) - ops.sum(slope, axis=0)
        return total, ops.where(rows == a, grad_row[None, :], grad)

    init = (ops.zeros((), "float32"), ops.zeros_like(dist_sg))
    total, grad = ops.fori_loop(0, ops.shape(dist)[0], body, init)
    return total + ops.sum(grad * (dist - dist_sg))


@tfface_export("tfface.losses.TripletBatchAllLoss")
class TripletBatchAllLoss(SoftTripletLossBase):
    """Batch-all triplet loss: the mean over every active valid triplet in the batch.

    Args:
        margin: float >= 0. Defaults to 1.0. Unused when `soft=True`.
        soft: bool, softplus over all valid triplets instead of the hinge (O(B³) time).
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
    >>> loss = tfface.losses.TripletBatchAllLoss(margin=2.0)
    >>> labels = np.array([0, 0, 1])
    >>> emb = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], "float32")
    >>> round(float(loss(labels, emb)), 4)  # only (0, 1, 2) is active: 2 + 3 - 4
    1.0

    Reference:
        Hermans et al., In Defense of the Triplet Loss, https://arxiv.org/abs/1703.07737.
    """

    loss_fn = staticmethod(triplet_batch_all_loss)
