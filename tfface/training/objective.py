"""The training objective: a classification head, or in-batch mining over the global batch.

`Objective` is called in replica context (inside `strategy.run`) on one replica's shard and
returns that replica's loss. The trainer divides it by the number of replicas before taking
gradients, because the optimizer all-reduces gradients with a SUM:

- per-sample losses (softmax, center, margin heads): each replica's loss is the mean over
  its shard; Σ_r (1/N)·∇mean_r = ∇(mean over the global batch) when shards are equal;
- triplet with `mining_scope="global"`: embeddings and labels are all-gathered, so every
  replica computes the same loss L on the whole global batch. The gradient of
  `all_gather` sums the upstream gradients of all replicas and slices this replica's rows:
  with per-replica loss c·L it gives N·c·∂L/∂e_r for the shard's embeddings. Back through
  the replica's model and summed over replicas by the optimizer, the update is
  N·c·∂L/∂θ, which equals the single-device gradient on the concatenated batch for c = 1/N.
"""

import keras
import tensorflow as tf

from tfface.training.choices import MINING_SCOPES
from tfface.training.heads import LOSSES  # noqa: F401  (re-exported)
from tfface.training.heads import MINING  # noqa: F401  (re-exported)
from tfface.training.heads import build_head
from tfface.training.heads import get_head


def all_gather_with_gradient(x):
    """`all_gather` along axis 0 whose gradient is the SUM over replicas, sliced to this shard.

    The same maths as `ReplicaContext.all_gather`'s own gradient, but the shard offset is
    replica_id·b (shards are equal by construction) instead of a second, int32 all_gather
    of the shard sizes: under MirroredStrategy that extra collective was observed to pair
    with the float all-reduce of the other replica and abort ("Collective instance ...
    expected type 0 ... but got type 2").
    """
    ctx = tf.distribute.get_replica_context()

    @tf.custom_gradient
    def gather(x):
        y = ctx.all_gather(x, axis=0)

        def grad(dy):
            dy = ctx.all_reduce(tf.distribute.ReduceOp.SUM, dy)
            b = tf.shape(x)[0]
            start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * b
            return dy[start : start + b]

        return y, grad

    return gather(x)


class Objective(tf.Module):
    """Per-replica training loss for one of `LOSSES`.

    Args:
        loss: one of `LOSSES` (the head table, `tfface.training.heads`).
        num_classes: number of training identities (heads and centers).
        mining: for a loss that mines (triplet), one of its `HeadSpec.mining` names;
            ignored otherwise.
        mining_scope: `"global"` mines on the all-gathered global batch, `"replica"` on
            each replica's shard (tensorflow-addons' behaviour under MirroredStrategy).
        triplet_margin: triplet margin α.
        distance_metric: triplet distance (`"L2"`, `"squared-L2"`, `"angular"`).
        head_kwargs: keyword arguments for the margin head (e.g. `{"scale": 16.0}`).
        center_weight: λ in softmax + λ·center (center loss only).
        center_alpha: center update rate α (center loss only).
        seed: seed of a head that draws random numbers (`HeadSpec.seeded`, ElasticFace).
        partial_fc: a `tfface.training.partial_fc.PartialFC` built for this loss's head:
            it replaces the replicated head (margin heads only) and computes the loss.

    Call arguments:
        embeddings: float32 [b, D] unit embeddings of this replica's shard.
        labels: int [b] identity labels.
        features: optional float [b, D] unnormalised backbone features; the heads marked
            `raw_features` (softmax, center, SphereFace) use them instead when given.
        global_labels: optional int [N·b] labels of the whole global batch in replica
            order (the host knows them; saves a collective for global mining).
        training: passed to the center layer (updates centers when True).

    Returns `(loss, stats)`: a float32 scalar and a dict of float32/int32 scalars
    (`positive_pairs`, `active_fraction` for triplet; `accuracy` for heads, on the logits
    without margin; `head_loss`, the head's own losses, and `feature_norm`, the mean ‖x‖,
    for the heads that have them).

    The loss includes the head's own losses (`head.losses` of its training call: MagFace's
    regulariser λ_g·g(a) from `add_loss`, a `kernel_regularizer`), as `model.fit` would.

    Which branch a loss takes is its `HeadSpec`'s: `mines` (gather, then the mining's
    `tfface.losses` function) or `classifies` (head logits and cross-entropy).
    """

    def __init__(
        self,
        loss,
        num_classes,
        mining="semihard",
        mining_scope="global",
        triplet_margin=0.2,
        distance_metric="squared-L2",
        head_kwargs=None,
        center_weight=0.01,
        center_alpha=0.5,
        seed=None,
        partial_fc=None,
    ):
        super().__init__(name="objective")
        self.spec = get_head(loss)
        if self.spec.mines and mining not in self.spec.mining:
            raise ValueError(
                f"`mining` must be one of {tuple(self.spec.mining)}. Received: mining={mining!r}"
            )
        if mining_scope not in MINING_SCOPES:
            raise ValueError(
                f"`mining_scope` must be one of {MINING_SCOPES}. "
                f"Received: mining_scope={mining_scope!r}"
            )
        if self.spec.classifies and (not isinstance(num_classes, int) or num_classes < 2):
            raise ValueError(
                f"`num_classes` must be an int >= 2 for loss={loss!r}. "
                f"Received: num_classes={num_classes!r}"
            )
        if center_weight < 0:
            raise ValueError(f"`center_weight` must be >= 0. Received: {center_weight}")
        self.loss = loss
        self.num_classes = num_classes
        self.mining = mining
        self.mining_scope = mining_scope
        self.triplet_margin = triplet_margin
        self.distance_metric = distance_metric
        self.head_kwargs = dict(head_kwargs or {})
        self.center_weight = center_weight
        self.center_alpha = center_alpha
        if partial_fc is not None and not self.spec.margin_head:
            raise ValueError(f"`partial_fc` needs a margin head. Received: loss={loss!r}")
        self.partial_fc = partial_fc
        if partial_fc is None:
            self.head = build_head(loss, num_classes, self.head_kwargs, seed=seed)
        else:
            # The shards are plain per-device variables; a checkpoint holds their
            # canonical [C, D] layout (this Trackable) and the head's state.
            self.head = partial_fc.head
            self.partial_fc_state = partial_fc.checkpoint_state
        self.center = None
        if self.spec.center:
            from tfface import layers

            self.center = layers.CenterLoss(
                num_classes, alpha=center_alpha, dtype="float32", name="center_loss"
            )

    def build(self, embedding_dim):
        """Creates head and center variables (call inside `strategy.scope()`)."""
        if self.head is not None and not self.head.built:
            emb = keras.ops.zeros((2, embedding_dim), "float32")
            lab = keras.ops.zeros((2,), "int64")
            if self.spec.margin_head:
                self.head([emb, lab])
            else:
                self.head(emb)
        if self.center is not None and not self.center.built:
            self.center.build([(None, embedding_dim), (None,)])

    @property
    def layers(self):
        return [layer for layer in (self.head, self.center) if layer is not None]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    def __call__(self, embeddings, labels, training=True, global_labels=None, features=None):
        embeddings = tf.cast(embeddings, tf.float32)
        if self.spec.mines:
            ctx = tf.distribute.get_replica_context()
            if self.mining_scope == "global" and ctx is not None and ctx.num_replicas_in_sync > 1:
                embeddings = all_gather_with_gradient(embeddings)
                if global_labels is None:
                    # Ordered after the embedding gather: two collectives in flight at once
                    # can pair up differently on each replica and abort.
                    with tf.control_dependencies([embeddings]):
                        labels = ctx.all_gather(tf.identity(labels), axis=0)
                else:
                    labels = global_labels
            from tfface import losses

            loss, stats = getattr(losses, self.spec.mining[self.mining])(
                labels,
                embeddings,
                margin=self.triplet_margin,
                distance_metric=self.distance_metric,
                return_stats=True,
            )
            return tf.cast(loss, tf.float32), dict(stats)
        if self.spec.raw_features and features is not None:
            # Their logits scale with ‖x‖ (or centers live in feature space): on unit
            # vectors the softmax could never become confident.
            embeddings = tf.cast(features, tf.float32)
        stats = {}
        if self.spec.quality:
            stats["feature_norm"] = tf.reduce_mean(tf.norm(embeddings, axis=-1))
        if self.partial_fc is not None:
            loss, pfc_stats = self.partial_fc(
                embeddings, labels, global_labels=global_labels, training=training
            )
            stats.update(pfc_stats)
            if self.spec.adds_loss:
                # Partial FC calls the head's margin hook, not the layer, so the term the
                # layer would add_loss (MagFace's λ_g·g(a), of this replica's features) is
                # added here, as the replicated head's `head.losses` are below.
                head_loss = tf.cast(self.head.own_loss(embeddings), tf.float32)
                stats["head_loss"] = head_loss
                loss = loss + head_loss
            return loss, stats
        if self.spec.margin_head:
            logits = self.head([embeddings, labels], training=training)
            # Read before the next call: a layer's top-level call clears its losses.
            head_losses = list(self.head.losses)
            # Accuracy on the plain logits f(x)·cos θ_j: with the margin on the target
            # class, argmax rarely picks it early in training (ArcFace logged accuracy=0).
            plain = tf.stop_gradient(self.head(embeddings, training=False))
        else:
            logits = self.head(embeddings, training=training)
            head_losses = list(self.head.losses)
            plain = logits
        logits = tf.cast(logits, tf.float32)
        ce = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )
        correct = tf.equal(tf.argmax(plain, axis=-1), tf.cast(labels, tf.int64))
        stats["accuracy"] = tf.reduce_mean(tf.cast(correct, tf.float32))
        if head_losses:
            head_loss = tf.add_n([tf.cast(x, tf.float32) for x in head_losses])
            stats["head_loss"] = head_loss
            ce = ce + head_loss
        if self.center is None:
            return ce, stats
        center = tf.cast(self.center([embeddings, labels], training=training), tf.float32)
        stats["center_loss"] = center
        return ce + self.center_weight * center, stats
