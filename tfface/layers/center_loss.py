"""Center loss (Wen et al., ECCV 2016) with the paper's center update, replica-aware."""

import keras
from keras import ops

from tfface.api_export import tfface_export


@tfface_export("tfface.layers.CenterLoss")
class CenterLoss(keras.layers.Layer):
    """Returns ½ · mean_i ‖x_i − c_{y_i}‖² and, when training, moves the class centers.

    Reduction: Wen et al. write L_C = ½ Σ_i ‖x_i − c_{y_i}‖²; this layer returns the *mean*
    over the batch instead, so the weight λ in L_S + λ·L_C does not change with the batch
    size (multiply λ by the batch size to match a paper setting). The gradient flows to
    the features only: centers are a non-trainable weight that no optimizer touches.

    Center update (paper Eq. 4, once per training call, after the loss is computed):
    Δc_j = Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j), c_j ← c_j − α · Δc_j, for the classes
    present in the batch only. Implemented with a sort of the labels, segment sums and a
    row scatter into `centers`: O(B log B + B·D) per step, independent of the number of
    classes C (C can be 10⁵–10⁶).

    Under a `tf.distribute` strategy (replica context, e.g. `MirroredStrategy` in
    `model.fit` or `strategy.run`), the replicas all-gather their labels, all-reduce
    (SUM) the per-class sums Σ(c_j − x_i) and counts n_j *before* forming Δc_j, and then
    apply the same row update, so N replicas give the same centers as one device on the
    concatenated global batch. The loss value itself is the mean over the replica's own
    batch (the usual per-replica loss that Keras averages).

    Backends: on JAX and torch the same update is written in `keras.ops` (a sort-based
    segment sum, then `ops.scatter_update` of the batch's rows, which rebuilds the [C, D]
    centers tensor each step instead of TF's in-place row write). Under JAX's
    `keras.distribution` (SPMD) the batch a step sees is the global one, so the update is
    exact as on one device. Under `torch.distributed` with more than one process there is
    no backend-neutral all-reduce inside a layer, so each process would move its own
    copy of the centers: a training call raises `NotImplementedError` there.

    Args:
        num_classes: int >= 1, number of identities C.
        alpha: float in [0, 1], center learning rate α. Defaults to `0.5`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[features, labels]`: float features [B, D] and integer labels [B] or
            [B, 1] in [0, C).
        training: bool; centers move only when True.

    Example:

    ```python
    features = backbone(images)
    center_loss = tfface.layers.CenterLoss(num_classes)([features, labels])
    loss = softmax_loss + 0.003 * center_loss  # λ = 0.003 with the mean reduction
    ```

    Reference:
        Wen et al., "A Discriminative Feature Learning Approach for Deep Face
        Recognition", ECCV 2016.
    """

    def __init__(self, num_classes, alpha=0.5, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"`num_classes` must be an int >= 1. Received: num_classes={num_classes!r}"
            )
        if not 0 <= alpha <= 1:
            raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha!r}")
        self.num_classes = num_classes
        self.alpha = float(alpha)

    @property
    def input_dtype(self):
        # Distances are computed in float32 under mixed precision as well.
        return "float32"

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)):
            input_shape = [tuple(s.as_list()) if hasattr(s, "as_list") else s for s in input_shape]
        if not (
            isinstance(input_shape, (list, tuple))
            and len(input_shape) == 2
            and all(isinstance(shape, (list, tuple)) for shape in input_shape)
        ):
            raise ValueError(
                f"CenterLoss expects `[features, labels]`. Received: input_shape={input_shape!r}"
            )
        features_shape = tuple(input_shape[0])
        if len(features_shape) != 2 or features_shape[-1] is None:
            raise ValueError(
                "CenterLoss expects features of shape [batch, dim] with a known dim. "
                f"Received: features shape={features_shape}"
            )
        # ONLY_FIRST_REPLICA: after the all-reduce every replica writes identical rows.
        self.centers = self.add_weight(
            shape=(self.num_classes, features_shape[-1]),
            initializer="zeros",
            dtype="float32",
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name="centers",
        )

    def call(self, inputs, training=None):
        if not (isinstance(inputs, (list, tuple)) and len(inputs) == 2):
            raise ValueError("CenterLoss expects `[features, labels]` as inputs.")
        features, labels = inputs
        if not keras.backend.is_int_dtype(labels.dtype):
            raise ValueError(
                f"CenterLoss expects integer class labels. Received: labels dtype={labels.dtype}"
            )
        features = ops.cast(features, "float32")
        labels = ops.reshape(labels, (-1,))
        batch_centers = ops.take(self.centers.value, labels, axis=0)
        diff = features - ops.stop_gradient(batch_centers)
        loss = 0.5 * ops.mean(ops.sum(ops.square(diff), axis=-1))
        if training:
            self._update_centers(ops.stop_gradient(features), labels, batch_centers)
        return loss

    def _update_centers(self, features, labels, batch_centers):
        if keras.backend.backend() != "tensorflow":
            return self._update_centers_ops(features, labels, batch_centers)
        import tensorflow as tf

        # Raw tf: replica context, collectives and a sparse row write to a (mirrored) variable.
        context = tf.distribute.get_replica_context()
        distributed = context is not None and context.num_replicas_in_sync > 1
        local_size = tf.shape(labels)[0]
        if distributed:
            all_labels = context.all_gather(labels, axis=0)
            sizes = context.all_gather(tf.reshape(local_size, (1,)), axis=0)
            offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
        else:
            all_labels, offset = labels, 0
        num_slots = tf.shape(all_labels)[0]
        all_groups = _group_ids(all_labels)
        local_groups = all_groups[offset : offset + local_size]

        sums = tf.math.unsorted_segment_sum(batch_centers - features, local_groups, num_slots)
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(local_groups, dtype=tf.float32), local_groups, num_slots
        )
        if distributed:
            sums, counts = context.all_reduce(tf.distribute.ReduceOp.SUM, [sums, counts])
        delta = sums / (1.0 + counts)[:, None]

        # One row per sample: duplicates of a class write identical values, so the
        # scatter result does not depend on the write order.
        centers = self.centers.value
        rows = tf.gather(centers, all_labels) - self.alpha * tf.gather(delta, all_groups)
        centers.scatter_update(tf.IndexedSlices(rows, all_labels))

    def _update_centers_ops(self, features, labels, batch_centers):
        """The same update in keras.ops, for the JAX and torch backends (one device/SPMD)."""
        if keras.backend.backend() == "torch":
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                raise NotImplementedError(
                    "CenterLoss cannot update its centers under torch.distributed: the "
                    "per-class sums would need an all-reduce across processes, which has no "
                    "backend-neutral form. Use the TensorFlow backend (tf.distribute) or "
                    f"JAX (keras.distribution). Received: world_size={dist.get_world_size()}"
                )
        num_slots = ops.shape(labels)[0]
        groups = _group_ids_ops(labels)
        sums = ops.segment_sum(batch_centers - features, groups, num_segments=num_slots)
        counts = ops.segment_sum(
            ops.ones_like(groups, dtype="float32"), groups, num_segments=num_slots
        )
        delta = sums / (1.0 + counts)[:, None]
        # As on TF, duplicates of a class write identical rows.
        rows = batch_centers - self.alpha * ops.take(delta, groups, axis=0)
        self.centers.assign(
            ops.scatter_update(self.centers.value, ops.expand_dims(labels, -1), rows)
        )

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "alpha": self.alpha})
        return config


def _group_ids(labels):
    """For labels [N], ids in [0, N) with equal ids exactly for equal labels (sort-based)."""
    import tensorflow as tf

    order = tf.argsort(labels, stable=True)
    sorted_labels = tf.gather(labels, order)
    is_new = tf.concat([[True], tf.not_equal(sorted_labels[1:], sorted_labels[:-1])], axis=0)
    sorted_groups = tf.cumsum(tf.cast(is_new, tf.int32)) - 1
    return tf.gather(sorted_groups, tf.argsort(order, stable=True))


def _group_ids_ops(labels):
    """`_group_ids` in keras.ops (JAX, torch); any sort order works, it is inverted below."""
    order = ops.argsort(labels)
    sorted_labels = ops.take(labels, order)
    is_new = ops.concatenate(
        [ops.ones((1,), "bool"), ops.not_equal(sorted_labels[1:], sorted_labels[:-1])], axis=0
    )
    sorted_groups = ops.cumsum(ops.cast(is_new, "int32")) - 1
    return ops.take(sorted_groups, ops.argsort(order))
