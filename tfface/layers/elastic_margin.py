"""Shared base of ElasticFace-Arc and ElasticFace-Cos: a margin drawn per sample from N(m, σ)."""

import keras
from keras import ops

from tfface.layers.margin_softmax import MarginSoftmax


class ElasticMargin(MarginSoftmax):
    """Target cosine → `elastic_target(cos θ_y, m_i)` with m_i ~ N(m, σ) per training sample.

    Every training call with labels draws one margin per sample from a normal distribution
    with mean `margin` and standard deviation `std` (`keras.random.normal` with the
    layer's `keras.random.SeedGenerator`, so a given `seed` repeats the same draws). The
    generator's state is mirrored in the non-trainable weight `seed_state`, which `.keras`
    files and checkpoints save, so a reloaded or resumed head continues the same sequence.
    Non-training calls with labels use the mean `margin` for every sample (no randomness
    at inference or evaluation); calls without labels return s · cos θ.

    With `plus=True` (ElasticFace+) the batch's margins are sorted and handed out by
    difficulty: the sample with the k-th largest cos θ_y (the k-th easiest) gets the k-th
    smallest margin, so hard samples get the large margins. The official code indexes
    the sorted margins with the sort permutation itself (`margin[idicate_cosie]`), which
    is that assignment only when the permutation is its own inverse; this layer assigns
    by rank, as the paper describes.

    Under a `tf.distribute` strategy the replicas share the generator state and replica
    r takes row r of an [N, B] draw, so their i-th samples get different margins. Under
    JAX's `keras.distribution` a step sees the global batch; under `torch.distributed`
    give each process its own `seed`.

    Subclasses choose how the margin enters: ElasticFace-Arc cos(θ_y + m_i),
    ElasticFace-Cos cos θ_y − m_i.

    Args:
        num_classes: int >= 1, number of identities C.
        scale: float > 0, s. Defaults to `64.0`.
        margin: float >= 0, the mean m of the margin distribution.
        std: float >= 0, its standard deviation σ. Defaults to `0.05`.
        plus: bool, ElasticFace+ (margins sorted by difficulty). Defaults to `False`.
        seed: int or None, seed of the margin draws. Defaults to `None`.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        num_classes,
        scale=64.0,
        margin=0.5,
        std=0.05,
        plus=False,
        seed=None,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        if scale is None:
            raise ValueError("`scale` must be > 0. Received: scale=None")
        super().__init__(
            num_classes,
            scale=scale,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            **kwargs,
        )
        if not margin >= 0:
            raise ValueError(f"`margin` must be >= 0. Received: margin={margin!r}")
        if not std >= 0:
            raise ValueError(f"`std` must be >= 0. Received: std={std!r}")
        if not isinstance(plus, bool):
            raise ValueError(f"`plus` must be a bool. Received: plus={plus!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.margin = float(margin)
        self.std = float(std)
        self.plus = plus
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The generator's own state is saved neither by `.keras` files nor by
        # `tf.train.Checkpoint`; this weight is, and every draw starts from it, so a reloaded
        # or resumed head goes on with the draws the run would have made.
        state = self.seed_generator.state
        self.seed_state = self.add_weight(
            shape=(2,),
            initializer=keras.initializers.Constant(ops.convert_to_numpy(state.value)),
            dtype=state.dtype,
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name="seed_state",
        )

    def sample_margins(self, cos_target):
        """Draws the margins [B] of one training call (advances the seed generator)."""
        cos_target = ops.convert_to_tensor(cos_target)  # NumPy on torch: stop_gradient below
        self.seed_generator.state.assign(self.seed_state.value)
        replica, replicas = _replica_id_and_count()
        # Every replica advances the same generator state; each takes its own row of the
        # draw, so replicas do not hand identical margins to their i-th samples.
        margins = keras.random.normal(
            (replicas,) + tuple(ops.shape(cos_target)),
            mean=self.margin,
            stddev=self.std,
            dtype="float32",
            seed=self.seed_generator,
        )
        self.seed_state.assign(self.seed_generator.state.value)
        margins = margins[0] if replicas == 1 else ops.take(margins, replica, axis=0)
        if not self.plus:
            return margins
        # rank[i] = position of sample i when the batch is sorted by cos θ_y, descending.
        rank = ops.argsort(ops.argsort(-ops.stop_gradient(cos_target)))
        return ops.take(ops.sort(margins), rank)

    def elastic_target(self, cos_target, margins):
        """The target cosine for per-sample margins [B] (or one float)."""
        raise NotImplementedError(
            f"{self.__class__.__name__} must override `elastic_target(cos_target, margins)`."
        )

    def margin_cosines(self, batch):
        margins = self.sample_margins(batch.cos_target) if batch.training else self.margin
        return self.elastic_target(batch.cos_target, margins), batch.cosine

    def get_config(self):
        config = super().get_config()
        config.update(
            {"margin": self.margin, "std": self.std, "plus": self.plus, "seed": self.seed}
        )
        return config


def _replica_id_and_count():
    """(replica id, replicas in sync) under a `tf.distribute` replica context, else (0, 1)."""
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync
