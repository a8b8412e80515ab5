"""Identity-balanced P×K batches: P identities × K images each, for triplet mining.

`pk_batches(source, P, K, seed, image_size)` is an infinite `tf.data.Dataset` of
(float32 images [P·K, S, S, 3] in 0–255, int64 labels [P·K]).

Scaling. Sampling is TF ops on a CSR index of the source (example indices sorted by label,
plus per-identity offsets and counts, held as tensors), seeded statelessly by
(seed, epoch) and (seed, step): no Python work per identity or per step, and the graph is
the same size for 1,000 or 1,000,000 identities.

Identity order. Identities are drawn in epochs: each epoch is a fresh seeded permutation of
the eligible identities, cut into batches of P distinct identities (the last, incomplete
batch of an epoch is skipped; the next epoch's permutation is different). Every eligible
identity appears once per epoch, and no batch repeats an identity.

Images per identity. An identity with at least K images gives K distinct images, a random
subset. One with fewer than K images gives all its images, then repeats them in the same
random order to fill K (sampling with replacement only as far as needed). Identities with
fewer than `min_images` images (default 2) are excluded from sampling, because an identity
with a single image cannot form an anchor–positive pair; how many were excluded is logged
and available as `pk_index_sampler(...).num_excluded`.

Replicas. The batch is laid out as P contiguous identity blocks of K images. With
`num_replicas=R`, `strategy.experimental_distribute_dataset` gives each replica a
contiguous 1/R of the global batch, i.e. P/R whole identity blocks, so every replica still
sees K images of each of its identities. P must be divisible by R.
"""

import logging

import numpy as np
import tensorflow as tf

from tfface.data.augment import augment as augment_images

logger = logging.getLogger(__name__)

_STEP_SALT = 0x5A17
_AUGMENT_SALT = 0xA0C


def _check_int(name, value, minimum):
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_int or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


class PKIndexSampler:
    """Draws P×K example-index batches from int labels with TF ops on a CSR index.

    Args:
        labels: int array [num_examples], label of each example.
        identities_per_batch: P, distinct identities per batch.
        images_per_identity: K, images of each identity per batch.
        seed: int; the same seed gives the same sequence of batches.
        num_replicas: R; P must be a multiple of R (see the module docstring).
        min_images: identities with fewer images are not sampled (>= 1; default 2).
    """

    def __init__(
        self,
        labels,
        identities_per_batch,
        images_per_identity,
        seed,
        num_replicas=1,
        min_images=2,
    ):
        self.identities_per_batch = _check_int("identities_per_batch", identities_per_batch, 1)
        self.images_per_identity = _check_int("images_per_identity", images_per_identity, 1)
        self.seed = _check_int("seed", seed, -(2**62))
        self.num_replicas = _check_int("num_replicas", num_replicas, 1)
        self.min_images = _check_int("min_images", min_images, 1)
        if self.identities_per_batch % self.num_replicas:
            raise ValueError(
                "`identities_per_batch` must be divisible by `num_replicas`, so that each "
                "replica's contiguous shard holds whole identity blocks of K images. "
                f"Received: identities_per_batch={identities_per_batch}, "
                f"num_replicas={num_replicas}"
            )
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"`labels` must be a 1-D int array. Received: dtype={labels.dtype}, "
                f"shape={labels.shape}"
            )
        if labels.size and labels.min() < 0:
            raise ValueError(f"`labels` must be >= 0. Received: min label {labels.min()}")
        labels = labels.astype(np.int64)
        counts = np.bincount(labels) if labels.size else np.zeros(0, np.int64)
        order = np.argsort(labels, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        present = counts > 0
        eligible = np.nonzero(counts >= self.min_images)[0]
        self.num_excluded = int(np.sum(present) - eligible.size)
        self.num_eligible = int(eligible.size)
        if self.num_excluded:
            logger.warning(
                "pk_batches: %d of %d identities have fewer than min_images=%d images and "
                "are excluded from sampling.",
                self.num_excluded,
                int(np.sum(present)),
                self.min_images,
            )
        if self.num_eligible < self.identities_per_batch:
            raise ValueError(
                f"pk_batches needs at least identities_per_batch={self.identities_per_batch} "
                f"identities with >= min_images={self.min_images} images; the source has "
                f"{self.num_eligible} (of {int(np.sum(present))} identities)."
            )
        self._order = tf.constant(order, tf.int64)
        self._offsets = tf.constant(offsets[eligible], tf.int64)
        self._counts = tf.constant(counts[eligible], tf.int64)
        self.batches_per_epoch = self.num_eligible // self.identities_per_batch

    def identity_batches(self):
        """Infinite dataset of int64 [P] eligible-identity positions (epoch permutations)."""
        p, nb = self.identities_per_batch, self.batches_per_epoch
        n, seed = self.num_eligible, self.seed

        def epoch(e):
            perm = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), e])
            )
            return tf.data.Dataset.from_tensor_slices(tf.reshape(perm[: nb * p], [nb, p]))

        return tf.data.Dataset.counter().flat_map(epoch)

    @tf.function(reduce_retracing=True)
    def indices_for(self, identity_positions, step):
        """int64 [P·K] example indices for eligible identities [P] at `step` (identity-major)."""
        k = self.images_per_identity
        p = tf.shape(identity_positions)[0]
        counts = tf.gather(self._counts, identity_positions)  # [P]
        offsets = tf.gather(self._offsets, identity_positions)
        # A random order of each identity's images: one flat argsort of (row + u), u ∈
        # [0, 1), keeps rows contiguous and shuffles within them. Cost is O(Σ counts).
        starts = tf.cumsum(counts, exclusive=True)
        row = tf.repeat(tf.range(p, dtype=tf.int64), counts)
        within = tf.range(tf.size(row, out_type=tf.int64)) - tf.gather(starts, row)
        seed = tf.stack([tf.constant(self.seed, tf.int64) ^ _STEP_SALT, step])
        noise = tf.random.stateless_uniform(tf.shape(row), seed=seed, dtype=tf.float64)
        shuffled = tf.gather(within, tf.argsort(tf.cast(row, tf.float64) + noise, stable=True))
        # K draws per identity: the first K of the random order, cycling when count < K.
        slot = tf.range(k, dtype=tf.int64)[None, :] % counts[:, None]  # [P, K]
        local = tf.gather(shuffled, starts[:, None] + slot)
        return tf.reshape(tf.gather(self._order, offsets[:, None] + local), [-1])

    def index_batches(self):
        """Infinite dataset of int64 [P·K] example-index batches."""
        return (
            self.identity_batches().enumerate().map(lambda step, ids: self.indices_for(ids, step))
        )


def pk_batches(
    source,
    identities_per_batch,
    images_per_identity,
    seed,
    image_size,
    augment=True,
    num_replicas=1,
    min_images=2,
    augment_kwargs=None,
):
    """Infinite identity-balanced P×K batches from a `Source`.

    Args:
        source: a `tfface.data.Source` (e.g. `tfface.data.load("synthetic")`).
        identities_per_batch: P, distinct identities per global batch.
        images_per_identity: K, images per identity (fewer-image identities repeat their
            images to fill K; see the module docstring).
        seed: int; same seed ⇒ identical labels and pixels, batch after batch.
        image_size: S, images are resized to S×S (bilinear) when the source differs.
        augment: bool, apply `tfface.data.augment` (flip, scale/shift/rotation, colour).
        num_replicas: R, the number of replicas the global batch is split across
            contiguously; P must be divisible by R.
        min_images: identities with fewer images are excluded from sampling (default 2:
            a single image cannot form a positive pair).
        augment_kwargs: optional dict of keyword arguments for `tfface.data.augment`.

    Returns:
        tf.data.Dataset of (float32 images [P·K, S, S, 3] in 0–255, int64 labels [P·K]).

    Example:

    >>> source = tfface.data.load("synthetic:1000")
    >>> ds = tfface.data.pk_batches(source, 4, 2, seed=0, image_size=32)
    >>> images, labels = next(iter(ds))
    >>> images.shape, images.dtype.name, labels.shape
    (TensorShape([8, 32, 32, 3]), 'float32', TensorShape([8]))
    >>> bool(np.all(labels.numpy()[0::2] == labels.numpy()[1::2]))  # K = 2 per identity
    True
    """
    image_size = _check_int("image_size", image_size, 1)
    sampler = PKIndexSampler(
        source.labels,
        identities_per_batch,
        images_per_identity,
        seed,
        num_replicas=num_replicas,
        min_images=min_images,
    )
    batch = sampler.identities_per_batch * sampler.images_per_identity
    ds = source.images_for_indices(sampler.index_batches())
    aug_kwargs = dict(augment_kwargs or {})
    aug_seed = int(seed) ^ _AUGMENT_SALT

    def finish(step, element):
        images, labels = element
        shape = tf.shape(images)
        # uint8 stays uint8 until augment's first resampling, which reads it directly.
        images = tf.cond(
            tf.logical_and(tf.equal(shape[1], image_size), tf.equal(shape[2], image_size)),
            lambda: images,
            lambda: tf.cast(
                tf.clip_by_value(
                    tf.round(tf.image.resize(images, [image_size, image_size], antialias=True)),
                    0,
                    255,
                ),
                images.dtype,
            ),
        )
        if augment:
            images = augment_images(
                images, tf.stack([tf.constant(aug_seed, tf.int64), step]), **aug_kwargs
            )
        images = tf.ensure_shape(tf.cast(images, tf.float32), [batch, image_size, image_size, 3])
        labels = tf.ensure_shape(tf.cast(labels, tf.int64), [batch])
        return images, labels

    return (
        ds.enumerate()
        .map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
