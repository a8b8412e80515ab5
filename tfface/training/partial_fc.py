"""`PartialFC`: a margin head whose class centres are sharded over the replicas.

Model parallel over `tf.distribute` (An et al., "Partial FC: Training 10 Million
Identities on a Single Machine", ICCVW 2021; insightface's arcface_torch):

- replica g of N holds rows [g·s, (g+1)·s) of the class centres, s = ⌈C/N⌉ (a plain
  variable on its own device, not a mirrored one; the last shard is padded);
- the embeddings of the global batch are all-gathered once (with gradient); the labels
  come from the host (`global_labels`) or a second all-gather;
- each replica samples its rows: every positive class of the global batch that lives in
  the shard plus random negatives up to a fixed count k (static shapes); at r = 1 all
  rows are kept;
- cos θ of the whole batch against the sampled rows; the margin head's own
  `margin_cosines` hook (any head of the head table) gives the target value, applied to
  the positives that live in the shard;
- softmax cross-entropy with an all-gathered max and an all-reduced sum of exponentials
  (distributed softmax). Its gradient is local (softmax − one-hot on this shard's
  logits), so the backward pass needs no collective except the embedding gather's.

Only the sampled rows change: the centres and their optimizer slots are updated here by
momentum SGD or AdamW on the gathered rows (scatter), not by the Keras optimizer, whose
dense update would move every row (momentum, weight decay). Checkpoints hold one
canonical [C·K, D] layout (K sub-centres per class) and are re-sharded on restore, so a
run resumes on any number of replicas or workers. Under MultiWorkerMirroredStrategy the
layout is all-gathered from every worker at save (in chunks of rows, to the host).

Scaling: every replica returns the same global-batch loss L and the trainer divides it by
N (objective.py). The cross-entropy's gradient is multiplied by N so that each replica
gets ∂L/∂(its logits): its centres' gradient is exact, and the embedding gather sums the
replicas' parts into ∂L/∂e for each shard's embeddings, as for the replicated head.
"""

import math

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import resource_variable_ops

from tfface.layers.margin_softmax import MarginBatch
from tfface.layers.margin_softmax import l2_norm
from tfface.training.objective import all_gather_with_gradient

OPTIMIZERS = ("sgd", "adamw")
# Keras' Adam/AdamW constants, so that r = 1 matches the replicated head trained by Keras.
_BETA_1, _BETA_2, _EPSILON = 0.9, 0.999, 1e-7
# arcface_torch initialises the centres with N(0, 0.01²).
_INIT_STDDEV = 0.01
# Device memory a multi-worker save's all-gather may take at once (`PartialFC._all_gather`).
GATHER_CHUNK_BYTES = 256 << 20


def _new_variable(value, name, trainable=False):
    # A plain variable, also inside `strategy.scope()` (the strategy would mirror it).
    return resource_variable_ops.ResourceVariable(value, name=name, trainable=trainable)


def _replica_id(num_shards):
    """This replica's static global index (0 outside a strategy)."""
    if num_shards == 1:
        return 0
    ctx = tf.distribute.get_replica_context()
    replica = tf.get_static_value(ctx.replica_id_in_sync_group)
    if replica is None:
        raise ValueError("PartialFC needs a static replica id (MirroredStrategy, MultiWorker...).")
    return int(replica)


class PartialFC:
    """Sharded margin head with negative sampling; see the module docstring.

    Args:
        head: the margin head to shard (a `tfface.layers.MarginSoftmax`, unbuilt): its
            `margin_cosines` hook, `scale`, sub-centres and state (CurricularFace's t,
            AdaFace's statistics, ...) are used; its own kernel is never built. A copy with
            one class is built (in `strategy.scope()`) to hold that state.
        embedding_dim: D.
        strategy: the `tf.distribute.Strategy` (its replicas are the shards), or None.
        sample_rate: r in (0, 1]: each shard keeps k = max(⌈r·s⌉, min(B, s)) rows per step
            (B the global batch, so that every positive fits).
        global_batch_size: B.
        optimizer: `"sgd"` (momentum SGD, arcface_torch's) or `"adamw"` for the centres.
        learning_rate: a float or a schedule called with this head's step.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay (as Keras: w −= lr·wd·w before the update),
            on sampled rows only.
        seed: seed of the initial centres and of the negative sampling.
    """

    def __init__(
        self,
        head,
        embedding_dim,
        strategy=None,
        sample_rate=1.0,
        global_batch_size=None,
        optimizer="sgd",
        learning_rate=0.1,
        momentum=0.9,
        weight_decay=0.0,
        seed=0,
    ):
        if not 0 < sample_rate <= 1:
            raise ValueError(
                f"`sample_rate` must be in (0, 1]. Received: sample_rate={sample_rate}"
            )
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"`optimizer` must be one of {OPTIMIZERS}. Received: optimizer={optimizer!r}"
            )
        if not isinstance(global_batch_size, int) or global_batch_size < 1:
            raise ValueError(
                f"`global_batch_size` must be an int >= 1. Received: {global_batch_size!r}"
            )
        self.strategy = strategy or tf.distribute.get_strategy()
        self.num_classes = head.num_classes
        self.embedding_dim = int(embedding_dim)
        self.centers_per_class = head.centers_per_class
        self.num_shards = self.strategy.num_replicas_in_sync
        self.shard_size = math.ceil(self.num_classes / self.num_shards)
        self.num_sampled = min(
            self.shard_size,
            max(math.ceil(sample_rate * self.shard_size), global_batch_size),
        )
        self.sample_rate = float(sample_rate)
        self.global_batch_size = global_batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.seed = int(seed)

        config = dict(head.get_config(), num_classes=1)
        with self.strategy.scope():
            # Holds the head's state; its [D, K] kernel is never trained (no gradient).
            self.head = type(head).from_config(config)
            self.head.build([(None, self.embedding_dim), (None,)])
        self.head.kernel.trainable = False

        devices = self.strategy.extended.worker_devices
        self.num_local = len(devices)
        self.first_shard = self._first_local_shard()
        shape = (self.shard_size, self.centers_per_class, self.embedding_dim)
        self.shards, self.slots, self.iterations = [], [], []
        for i, device in enumerate(devices):
            g = self.first_shard + i
            with tf.device(device):
                init = tf.random.stateless_normal(shape, [self.seed, g], stddev=_INIT_STDDEV)
                self.shards.append(_new_variable(init, f"partial_fc_centres_{g}", trainable=True))
                names = ("momentum",) if optimizer == "sgd" else ("m", "v")
                if optimizer == "sgd" and self.momentum == 0:
                    names = ()
                self.slots.append(
                    {n: _new_variable(tf.zeros(shape), f"partial_fc_{n}_{g}") for n in names}
                )
                self.iterations.append(_new_variable(tf.constant(0, tf.int64), f"pfc_step_{g}"))
        self.gather_chunk_bytes = GATHER_CHUNK_BYTES
        self._gather_fn = None
        self.checkpoint_state = _CanonicalState(self)

    def _first_local_shard(self):
        if self.num_local == self.num_shards:
            return 0
        # MultiWorkerMirroredStrategy: global replica id = worker · local replicas + local id.
        resolver = self.strategy.cluster_resolver
        cluster = resolver.cluster_spec().as_dict()
        order = [("chief", i) for i in range(len(cluster.get("chief", [])))]
        order += [("worker", i) for i in range(len(cluster.get("worker", [])))]
        return order.index((resolver.task_type, resolver.task_id)) * self.num_local

    # === Variables ===
    @property
    def variables(self):
        """Every local centre, slot and step variable (finite checks)."""
        out = list(self.shards) + list(self.iterations)
        for slots in self.slots:
            out.extend(slots.values())
        return out

    @property
    def state_variables(self):
        """The template head's forward state (CurricularFace's t, AdaFace's statistics)."""
        return [w for w in self.head.weights if w is not self.head.kernel]

    def local_index(self):
        """Index into `shards` of the calling replica."""
        return self._local(_replica_id(self.num_shards))

    def _local(self, replica):
        i = replica - self.first_shard
        if not 0 <= i < self.num_local:
            raise ValueError(
                f"Replica {replica} is not on this worker (its shards are "
                f"{self.first_shard}..{self.first_shard + self.num_local - 1})."
            )
        return i

    # === Forward ===
    def _sample(self, g, labels, step):
        """Sorted int32 [k] rows of shard g: its positives first, then random negatives."""
        s, k = self.shard_size, self.num_sampled
        if k == s:
            return tf.range(s, dtype=tf.int32)
        local = labels - g * s
        in_shard = tf.logical_and(local >= 0, local < s)
        positive = tf.scatter_nd(
            tf.expand_dims(tf.boolean_mask(local, in_shard), 1),
            tf.ones_like(tf.boolean_mask(local, in_shard), tf.float32),
            [s],
        )
        seed = tf.stack([tf.cast(self.seed, tf.int64), step * self.num_shards + g])
        score = tf.random.stateless_uniform([s], seed)
        # Positives score > 1; padding rows (beyond C) score −1 and are taken last.
        valid = tf.range(s) < self.num_classes - g * s
        score = tf.where(positive > 0, 2.0, tf.where(valid, score, -1.0))
        rows = tf.math.top_k(score, k, sorted=False).indices
        return tf.sort(rows)

    def __call__(self, embeddings, labels, global_labels=None, training=True):
        """Per-replica (loss, stats) on the global batch; call it inside `strategy.run`.

        Args:
            embeddings: float [b, D] this replica's embeddings (or features).
            labels: int [b] their labels.
            global_labels: optional int [N·b] labels of the global batch in replica order.
            training: passed to the head's hook.

        Returns `(loss, stats)`: the global-batch cross-entropy (the same on every replica)
        and {"accuracy"}: argmax of the plain logits f(x)·cos θ over the sampled classes.
        """
        n = self.num_shards
        g = _replica_id(n)
        i = self._local(g)
        ctx = tf.distribute.get_replica_context()
        x = tf.cast(embeddings, tf.float32)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        if n > 1:
            x = all_gather_with_gradient(x)
            if global_labels is None:
                with tf.control_dependencies([x]):
                    labels = ctx.all_gather(tf.identity(labels), axis=0)
            else:
                labels = tf.reshape(tf.cast(global_labels, tf.int32), [-1])
        s, k, kk = self.shard_size, self.num_sampled, self.centers_per_class
        rows = self._sample(g, labels, self.iterations[i].read_value())
        w = tf.gather(self.shards[i], rows)  # [k, K, D]; its gradient is IndexedSlices
        w = tf.reshape(w, [k * kk, self.embedding_dim])

        x_norm = l2_norm(x, axis=-1)  # [B, 1]
        w_norm = tf.transpose(l2_norm(w, axis=-1))  # [1, k·K]
        cosine = tf.clip_by_value(
            tf.matmul(x / x_norm, w / tf.transpose(w_norm), transpose_b=True), -1.0, 1.0
        )
        if kk > 1:
            cosine = tf.reduce_max(tf.reshape(cosine, [-1, k, kk]), axis=-1)
        head = self.head
        magnitude = x_norm if head.scale is None else head.scale
        if not head.normalize_weights:
            magnitude = magnitude * w_norm

        local = labels - g * s
        is_target = tf.equal(tf.expand_dims(local, 1), tf.expand_dims(rows, 0))  # [B, k]
        valid = tf.expand_dims(rows < self.num_classes - g * s, 0)  # padding rows: no logit
        cos_local = tf.reduce_sum(tf.where(is_target, cosine, 0.0), axis=1)
        if n > 1:
            with tf.control_dependencies([labels]):
                cos_all = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(cos_local))
            # The target's gradient reaches it through the shard that owns the class.
            cos_target = cos_local + tf.stop_gradient(cos_all - cos_local)
        else:
            cos_target = cos_local
        target, cosine_used = head.margin_cosines(
            MarginBatch(
                cosine=cosine,
                cos_target=cos_target,
                labels=labels,
                is_target=is_target,
                feature_norms=x_norm[:, 0],
                training=training,
            )
        )
        target = tf.cast(target, tf.float32)
        logits = magnitude * tf.where(is_target, tf.expand_dims(target, -1), cosine_used)
        plain = tf.stop_gradient(magnitude * cosine)
        loss, correct = _distributed_cross_entropy(logits, plain, is_target, valid, n, ctx)
        return loss, {"accuracy": tf.reduce_mean(correct)}

    # === Update ===
    def apply(self, values, rows, loss_scale=None):
        """Updates the calling replica's sampled rows and their slots (replica context).

        Args:
            values: float [k, K, D] gradient of the sampled rows (`IndexedSlices.values`).
            rows: int [k] their rows in the shard (`IndexedSlices.indices`, unique).
            loss_scale: divide `values` by it (mixed precision), or None.
        """
        i = self.local_index()
        var, slots, step = self.shards[i], self.slots[i], self.iterations[i]
        grad = tf.cast(values, tf.float32)
        if loss_scale is not None:
            grad = grad / tf.cast(loss_scale, tf.float32)
        rows = tf.expand_dims(tf.cast(rows, tf.int32), 1)
        lr = self.learning_rate
        lr = tf.cast(lr(step) if callable(lr) else lr, tf.float32)
        w = tf.gather_nd(var, rows)
        if self.weight_decay:
            w = w - w * self.weight_decay * lr
        if self.optimizer == "sgd":
            if slots:
                m = self.momentum * tf.gather_nd(slots["momentum"], rows) - lr * grad
                slots["momentum"].scatter_nd_update(rows, m)
                w = w + m
            else:
                w = w - lr * grad
        else:
            t = tf.cast(step + 1, tf.float32)
            alpha = lr * tf.sqrt(1 - tf.pow(_BETA_2, t)) / (1 - tf.pow(_BETA_1, t))
            m = tf.gather_nd(slots["m"], rows)
            v = tf.gather_nd(slots["v"], rows)
            m = m + (grad - m) * (1 - _BETA_1)
            v = v + (tf.square(grad) - v) * (1 - _BETA_2)
            slots["m"].scatter_nd_update(rows, m)
            slots["v"].scatter_nd_update(rows, v)
            w = w - m * alpha / (tf.sqrt(v) + _EPSILON)
        var.scatter_nd_update(rows, w)
        step.assign_add(1)

    # === Canonical layout ===
    def canonical(self, force_gather=False):
        """{name: [C·K, D] float32 (or int64 step)} of every shard, concatenated.

        Under MultiWorkerMirroredStrategy the other workers' shards are all-gathered: a
        collective, so every worker must call it at once (as every worker saves and
        restores, TF's restore also reads it for the tensors' specs). `force_gather`
        all-gathers also when every shard is local (tests, benchmarks).
        """
        c, d = self.num_classes * self.centers_per_class, self.embedding_dim
        names = list(self.slots[0])
        if self.num_local == self.num_shards and not force_gather:
            groups = [self.shards] + [[slots[n] for slots in self.slots] for n in names]
            with tf.device("/cpu:0"):
                joined = [tf.concat([v.read_value() for v in vs], 0) for vs in groups]
        else:
            joined = self._all_gather()
        with tf.device("/cpu:0"):
            out = {"centres": tf.reshape(joined[0], [-1, d])[:c]}
            out["step"] = self.iterations[0].read_value()
            for name, value in zip(names, joined[1:], strict=True):
                out[name] = tf.reshape(value, [-1, d])[:c]
        return out

    def _all_gather(self):
        """[N·s, K, D] of the centres and of each slot, every worker's shards in replica
        order (on the host), all-gathered on every worker.

        The shard and its slots travel side by side, in chunks of rows so that a device
        holds at most `gather_chunk_bytes` of the gathered table at once (the whole table of
        2M classes × 512 with momentum would be 7.6 GiB on every GPU); each chunk goes to
        the host before the next is gathered. Every local replica joins each collective;
        the first one's copy is kept. `gather_chunk_bytes` is read when the gather is first
        traced (set it before the first save).
        """
        if self._gather_fn is None:
            names, kk = list(self.slots[0]), self.centers_per_class
            n, s, d = self.num_shards, self.shard_size, self.embedding_dim
            width = (len(names) + 1) * d
            chunk = max(1, min(s, self.gather_chunk_bytes // (n * kk * width * 4)))
            bounds = [(a, min(a + chunk, s)) for a in range(0, s, chunk)]

            def replica_fn():
                i = self.local_index()
                local = [self.shards[i]] + [self.slots[i][name] for name in names]
                ctx = tf.distribute.get_replica_context()
                parts, previous = [], []
                for a, b in bounds:
                    with tf.control_dependencies(previous):
                        joined = tf.concat([v[a:b] for v in local], axis=-1)
                        gathered = ctx.all_gather(joined, axis=0)  # [N·(b−a), K, width]
                    if i == 0:
                        with tf.device("/cpu:0"):
                            parts.append(tf.reshape(gathered, [n, b - a, kk, width]))
                    else:
                        parts.append(gathered[:0])  # joins the collective, keeps nothing
                    previous = [parts[-1]]
                return parts

            def gather():
                parts = self.strategy.experimental_local_results(self.strategy.run(replica_fn))
                with tf.device("/cpu:0"):
                    value = tf.reshape(tf.concat(parts[0], axis=1), [n * s, kk, width])
                    return [value[..., j * d : (j + 1) * d] for j in range(len(names) + 1)]

            self._gather_fn = tf.function(gather)
        return self._gather_fn()

    def assign_canonical(self, tensors):
        """Re-shards a canonical layout (from a checkpoint of any replica count)."""
        c, d = self.num_classes * self.centers_per_class, self.embedding_dim
        rows = self.shard_size * self.centers_per_class
        shape = (self.shard_size, self.centers_per_class, d)

        def split(value, variables):
            value = tf.convert_to_tensor(value)
            if tuple(value.shape) != (c, d):
                raise ValueError(
                    f"PartialFC checkpoint layout must be [{c}, {d}]. "
                    f"Received: shape={tuple(value.shape)}"
                )
            pad = rows * self.num_shards - c
            value = tf.concat([value, tf.zeros([pad, d], value.dtype)], 0)
            for j, var in enumerate(variables):
                g = self.first_shard + j
                var.assign(tf.reshape(value[g * rows : (g + 1) * rows], shape))

        split(tensors["centres"], self.shards)
        for name in self.slots[0]:
            if name not in tensors:
                raise ValueError(f"PartialFC checkpoint has no `{name}` slot (other optimizer?)")
            split(tensors[name], [slots[name] for slots in self.slots])
        for step in self.iterations:
            step.assign(tensors["step"])

    def set_weights(self, kernel):
        """Sets the centres from a full head's kernel [D, C·K] (e.g. to compare the two)."""
        kernel = np.asarray(kernel, np.float32)
        tensors = {"centres": kernel.T, "step": 0}
        for name in self.slots[0]:
            tensors[name] = np.zeros_like(kernel.T)
        self.assign_canonical(tensors)

    def kernel(self):
        """The centres as a full head's kernel [D, C·K] (NumPy)."""
        return self.canonical()["centres"].numpy().T


class _CanonicalState(tf.__internal__.tracking.Trackable):
    """What a checkpoint holds of a `PartialFC`: the canonical layout, not the shards."""

    def __init__(self, partial_fc):
        self._partial_fc = partial_fc

    def _serialize_to_tensors(self):
        return self._partial_fc.canonical()

    def _restore_from_tensors(self, restored_tensors):
        self._partial_fc.assign_canonical(restored_tensors)


def _distributed_cross_entropy(logits, plain, is_target, valid, num_shards, ctx):
    """(mean cross-entropy over the global batch, [B] float correct) from each shard's
    logits [B, k]: max all-gathered, Σ exp and the target logit all-reduced. The gradient
    is this shard's (softmax − one-hot) / B, times `num_shards` (module docstring)."""
    batch = tf.cast(tf.shape(logits)[0], tf.float32)
    neg_inf = tf.constant(-np.inf, tf.float32)

    @tf.custom_gradient
    def cross_entropy(logits):
        masked = tf.where(valid, logits, neg_inf)
        maxima = tf.stack(
            [tf.reduce_max(masked, 1), tf.reduce_max(tf.where(valid, plain, neg_inf), 1)]
        )
        target = tf.stack(
            [
                tf.reduce_sum(tf.where(is_target, logits, 0.0), 1),
                tf.reduce_sum(tf.where(is_target, plain, 0.0), 1),
            ]
        )
        if num_shards > 1:
            maxima = tf.reduce_max(ctx.all_gather(tf.expand_dims(maxima, 0), axis=0), axis=0)
        top = maxima[0]
        exp = tf.exp(masked - tf.expand_dims(top, 1))
        sums = tf.concat([tf.expand_dims(tf.reduce_sum(exp, 1), 0), target], 0)
        if num_shards > 1:
            with tf.control_dependencies([top]):
                sums = ctx.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        total, target_logit, target_plain = sums[0], sums[1], sums[2]
        loss = tf.reduce_mean(tf.math.log(total) + top - target_logit)
        correct = tf.cast(target_plain >= maxima[1], tf.float32)

        def grad(dy, _):
            softmax = exp / tf.expand_dims(total, 1)
            return (softmax - tf.cast(is_target, tf.float32)) * (dy * num_shards / batch)

        return (loss, correct), grad

    return cross_entropy(logits)
