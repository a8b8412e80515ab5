"""Shared mining helpers for the triplet losses: input checks, masks, sorted search.

Everything here is O(B²) in memory: the [B², B] tile that tfa builds for semi-hard mining
is replaced by sorting each anchor's negative distances once and binary-searching them.
"""

import keras
from keras import ops

from tfface.losses import distances


def check_margin(margin):
    if isinstance(margin, (int, float)) and not isinstance(margin, bool):
        if margin < 0:
            raise ValueError(f"`margin` must be >= 0. Received: margin={margin}")
    elif not hasattr(margin, "dtype"):
        raise ValueError(f"`margin` must be a number >= 0. Received: margin={margin!r}")


def prepare(labels, embeddings, distance_metric):
    """Validates the inputs; returns (labels [B] int, distances [B, B] float32)."""
    distance_fn = distances.get(distance_metric)
    embeddings = ops.convert_to_tensor(embeddings)
    labels = ops.convert_to_tensor(labels)
    if len(embeddings.shape) != 2:
        raise ValueError(
            "`embeddings` must have shape [batch, dim]. "
            f"Received: embeddings.shape={tuple(embeddings.shape)}"
        )
    if not keras.backend.is_float_dtype(embeddings.dtype):
        raise ValueError(f"`embeddings` must be floating point. Received: dtype={embeddings.dtype}")
    dtype = keras.backend.standardize_dtype(labels.dtype)
    if dtype in ("float32", "float64"):
        # Keras hands a compiled loss *function* its labels as float32: exact for labels
        # below 2**24, which covers every public face dataset. The Loss classes keep ints.
        labels = ops.cast(labels, "int64")
    elif "int" not in dtype:
        # float16/bfloat16 labels above 2048/256 silently merge identities.
        raise ValueError(
            "`labels` must be an integer tensor (or float32/float64, exact below 2**24). "
            f"Received: labels.dtype={dtype}"
        )
    if len(labels.shape) == 2 and labels.shape[1] == 1:
        labels = ops.reshape(labels, (-1,))
    if len(labels.shape) != 1:
        raise ValueError(
            f"`labels` must have shape [batch] or [batch, 1]. Received: shape={labels.shape}"
        )
    if (
        labels.shape[0] is not None
        and embeddings.shape[0] is not None
        and labels.shape[0] != embeddings.shape[0]
    ):
        raise ValueError(
            "`labels` and `embeddings` must have the same batch size. Received: "
            f"labels.shape={tuple(labels.shape)}, embeddings.shape={tuple(embeddings.shape)}"
        )
    # float16/bfloat16 embeddings: distances, sorting and sums all run in float32.
    dist = distance_fn(ops.cast(embeddings, "float32"))
    return labels, dist


def pair_masks(labels):
    """Boolean [B, B] masks: positives (same label, a ≠ p) and negatives (other label)."""
    same = ops.equal(labels[:, None], labels[None, :])
    eye = ops.eye(ops.shape(labels)[0], dtype="bool")
    return ops.logical_and(same, ops.logical_not(eye)), ops.logical_not(same)


def masked_max(dist, mask):
    """Row-wise max of `dist` over `mask`; the row minimum where the mask is empty (as tfa)."""
    row_min = ops.min(dist, axis=1, keepdims=True)
    return ops.max(ops.where(mask, dist, row_min), axis=1)


def masked_min(dist, mask):
    """Row-wise min of `dist` over `mask`; the row maximum where the mask is empty (as tfa)."""
    row_max = ops.max(dist, axis=1, keepdims=True)
    return ops.min(ops.where(mask, dist, row_max), axis=1)


def sort_rows(dist, mask):
    """Sorts each row's masked entries ascending, unmasked entries pushed to +inf.

    Returns:
        (order [B, B] int32 column indices, sorted keys [B, B] without gradient,
        count [B] int32 of masked entries per row).
    """
    keys = ops.where(mask, ops.stop_gradient(dist), float("inf"))
    # One top_k on the negated keys yields the sorted values and their columns together
    # (argsort would run the same top_k and then a second gather for the values).
    neg_sorted, order = ops.top_k(-keys, k=ops.shape(keys)[1], sorted=True)
    count = ops.sum(ops.cast(mask, "int32"), axis=1)
    return ops.cast(order, "int32"), -neg_sorted, count


def positive_columns(dist, positive):
    """Each anchor's positives packed to the left: d(a, p) [B, K] with gradient, valid [B, K].

    K is the largest number of positives of any anchor (dynamic; K ≤ B − 1), so for P×K
    batches every later search and gather works on [B, K] instead of [B, B].
    """
    num_pos = ops.sum(ops.cast(positive, "int32"), axis=1)
    if keras.backend.backend() == "jax":
        # jax.jit needs a static top_k width: all B columns (the extra ones are invalid).
        # Same values and gradients; the later work is [B, B] instead of [B, K].
        width = ops.shape(positive)[1]
    else:
        width = ops.max(num_pos, initial=0)
    keys = ops.where(positive, ops.stop_gradient(dist), float("-inf"))
    _, cols = ops.top_k(keys, k=width, sorted=True)
    cols = ops.cast(cols, "int32")
    valid = ops.arange(ops.shape(cols)[1], dtype="int32")[None, :] < num_pos[:, None]
    return take_rows(dist, cols), valid


# Below this many positives per anchor, scanning the negatives once per positive (a few
# elementwise [B, B] passes each) is cheaper than sorting every row; above it, sort+search.
SCAN_MAX_POSITIVES = 16


def semihard_negatives(dist, negative, pos_dist, scan_max_positives=SCAN_MAX_POSITIVES):
    """d(a, n) of the semi-hard negative for every packed positive: [B, K], with gradient.

    The smallest negative distance strictly greater than d(a, p); when there is none, the
    anchor's largest negative (the row minimum when it has no negative, as tfa). Two exact
    strategies, picked at run time from K (the most positives of any anchor):
      * K <= scan_max_positives: for each of the K positive columns, one masked row-min
        over the negatives: O(B²·K) time, O(B²) memory;
      * otherwise: sort each anchor's negatives once and binary-search d(a, p):
        O(B² log B) time, O(B²) memory.
    """
    fallback = masked_max(dist, negative)[:, None]
    width = ops.shape(pos_dist)[1]

    def scan():
        # Only column indices are carried through the loop (no gradient inside it, so the
        # backward pass keeps no per-iteration [B, B] activations); one gather afterwards
        # routes the gradient to the chosen negatives.
        dist_sg = ops.stop_gradient(dist)
        k_cols = ops.arange(width, dtype="int32")[None, :]

        def body(k, carry):
            chosen, found = carry
            q = ops.stop_gradient(pos_dist[:, k])[:, None]
            farther = ops.logical_and(negative, dist_sg > q)
            nearest = ops.cast(
                ops.argmin(ops.where(farther, dist_sg, float("inf")), axis=1), "int32"
            )
            here = k_cols == k
            chosen = ops.where(here, nearest[:, None], chosen)
            found = ops.where(here, ops.any(farther, axis=1)[:, None], found)
            return chosen, found

        init = (ops.zeros_like(pos_dist, dtype="int32"), ops.zeros_like(pos_dist, dtype="bool"))
        chosen, found = ops.fori_loop(0, width, body, init)
        return ops.where(found, take_rows(dist, chosen), fallback)

    def search():
        order, sorted_neg, num_neg = sort_rows(dist, negative)
        first_farther = searchsorted_rows(sorted_neg, pos_dist, side="right")
        last = ops.shape(dist)[1] - 1
        semihard = take_rows(dist, take_rows(order, ops.minimum(first_farther, last)))
        return ops.where(first_farther < num_neg[:, None], semihard, fallback)

    return ops.cond(width <= scan_max_positives, scan, search)


def take_rows(x, indices):
    """x[a, indices[a, j]] for every (a, j): a batched gather along the last axis."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # keras.ops.take_along_axis builds broadcast index grids on the TF backend; a
        # batch_dims gather is the same maths in one kernel.
        return tf.gather(x, indices, axis=1, batch_dims=1)
    return ops.take_along_axis(x, indices, axis=1)


def searchsorted_rows(sorted_rows, values, side="left"):
    """Row-wise searchsorted: for each row a, insertion points of values[a] in sorted_rows[a].

    side="left" counts entries < value, side="right" counts entries <= value.
    sorted_rows [B, N], values [B, M] → int32 [B, M]; O(B·M·log N) time, no extra memory.
    """
    if side not in ("left", "right"):
        raise ValueError(f"`side` must be 'left' or 'right'. Received: side={side!r}")
    sorted_rows = ops.stop_gradient(sorted_rows)
    values = ops.stop_gradient(values)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # keras.ops.searchsorted is 1-D only; tf.searchsorted searches every row of a
        # [B, B] sequence in one kernel (O(B² log B) time, O(B²) memory).
        return tf.searchsorted(sorted_rows, values, side=side, out_type=tf.int32)
    return _binary_search_rows(sorted_rows, values, side)


def _binary_search_rows(sorted_rows, values, side):
    """Portable keras.ops version of searchsorted_rows (a vectorised binary search)."""
    n = ops.shape(sorted_rows)[1]
    lo = ops.zeros(ops.shape(values), "int32")
    hi = ops.full(ops.shape(values), n, "int32")
    # ceil(log2(n + 1)) halvings close every [lo, hi) interval; 32 covers any int32 n.
    for _ in range(32 if not isinstance(n, int) else max(1, int(n).bit_length())):
        mid = (lo + hi) // 2
        probe = ops.take_along_axis(sorted_rows, ops.minimum(mid, n - 1), axis=1)
        go_right = probe <= values if side == "right" else probe < values
        open_ = lo < hi
        lo = ops.where(ops.logical_and(open_, go_right), mid + 1, lo)
        hi = ops.where(ops.logical_and(open_, ops.logical_not(go_right)), mid, hi)
    return lo
