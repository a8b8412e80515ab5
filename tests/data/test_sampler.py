"""Tests for tfface.data.sampler: P×K structure, determinism, policies, replicas, scale."""

import numpy as np
import pytest
import tensorflow as tf

from tfface.data.sampler import PKIndexSampler
from tfface.data.sampler import pk_batches
from tfface.data.source import Source


class IndexSource(Source):
    """Cheap fake source: image i is a constant image whose pixels encode i."""

    def __init__(self, labels, size=8):
        self.labels = np.asarray(labels, np.int64)
        self.identities = [f"id{i}" for i in range(int(self.labels.max()) + 1)]
        self.size = size

    def _images(self, idx):
        idx = tf.cast(idx, tf.int64)
        value = tf.cast(idx % 251, tf.uint8)[:, None, None, None]
        images = tf.broadcast_to(value, [tf.shape(idx)[0], self.size, self.size, 3])
        return images, tf.gather(tf.constant(self.labels), idx)

    def images_for_indices(self, indices_ds):
        return indices_ds.map(self._images)

    def dataset(self, shuffle=False, seed=None):
        return tf.data.Dataset.range(self.num_examples).batch(64).map(self._images).unbatch()


def _take(ds, n):
    return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]


def _index_batches(sampler, n):
    return [b.numpy() for b in sampler.index_batches().take(n)]


def _uneven_labels(num_identities, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 9, num_identities)
    return rng.permutation(np.repeat(np.arange(num_identities), counts))


def test_batches_are_identity_blocks_of_k_distinct_images():
    labels = _uneven_labels(60)
    sampler = PKIndexSampler(labels, 8, 4, seed=1)
    for batch in _index_batches(sampler, 20):
        blocks = labels[batch].reshape(8, 4)
        assert np.all(blocks == blocks[:, :1])  # every block is one identity
        assert len(set(blocks[:, 0])) == 8  # P distinct identities
        for row in batch.reshape(8, 4):
            count = np.sum(labels == labels[row[0]])
            # distinct images whenever the identity has K of them
            assert len(set(row)) == min(4, count)


def test_fewer_than_k_images_uses_all_then_repeats_and_single_images_are_excluded():
    # identity 0: 2 images, identity 1: 1 image (excluded), identities 2-5: 6 images.
    labels = np.array([0, 0, 1] + [i for i in range(2, 6) for _ in range(6)])
    sampler = PKIndexSampler(labels, 2, 5, seed=0)
    assert sampler.num_excluded == 1 and sampler.num_eligible == 5
    seen_zero = 0
    for batch in _index_batches(sampler, 40):
        assert 2 not in batch  # the single image of identity 1 is never drawn
        for row in batch.reshape(2, 5):
            if labels[row[0]] == 0:
                seen_zero += 1
                values, counts = np.unique(row, return_counts=True)
                assert set(values) == {0, 1} and sorted(counts) == [2, 3]
    assert seen_zero > 0
    # min_images=1 keeps identity 1 and repeats its single image K times.
    sampler = PKIndexSampler(labels, 2, 5, seed=0, min_images=1)
    assert sampler.num_excluded == 0
    rows = [r for b in _index_batches(sampler, 40) for r in b.reshape(2, 5)]
    assert any(np.all(r == 2) for r in rows)


def test_each_epoch_visits_every_eligible_identity_once():
    labels = np.repeat(np.arange(40), 3)
    sampler = PKIndexSampler(labels, 8, 2, seed=5)
    batches = _index_batches(sampler, 10)  # 2 epochs of 5 batches
    for epoch in (batches[:5], batches[5:]):
        ids = np.concatenate([labels[b].reshape(8, 2)[:, 0] for b in epoch])
        assert sorted(ids) == list(range(40))
    assert not np.array_equal(batches[0], batches[5])


def test_same_seed_same_labels_and_pixels_different_seed_differs():
    from tfface.data.synthetic import SyntheticSource

    source = SyntheticSource(num_identities=30, images_per_identity=5, image_size=48, seed=0)
    a = _take(pk_batches(source, 4, 3, seed=11, image_size=48), 3)
    b = _take(pk_batches(source, 4, 3, seed=11, image_size=48), 3)
    c = _take(pk_batches(source, 4, 3, seed=12, image_size=48), 3)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    assert not all(np.array_equal(ya, yc) for (_, ya), (_, yc) in zip(a, c, strict=True))
    x, y = a[0]
    assert x.shape == (12, 48, 48, 3) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0 and x.max() <= 255 and x.max() > 1
    assert np.all(y.reshape(4, 3) == y.reshape(4, 3)[:, :1])


def test_pixels_match_labels_without_augmentation_and_images_are_resized():
    labels = _uneven_labels(20, seed=3)
    source = IndexSource(labels, size=8)
    ds = pk_batches(source, 4, 2, seed=0, image_size=16, augment=False)
    for x, y in _take(ds, 5):
        assert x.shape == (8, 16, 16, 3)
        idx = x[:, 0, 0, 0].astype(np.int64)  # the encoded example index (all < 251)
        np.testing.assert_array_equal(labels[idx], y)


def test_num_replicas_requires_divisible_p_and_shards_hold_whole_blocks():
    labels = np.repeat(np.arange(30), 4)
    with pytest.raises(ValueError, match="divisible by `num_replicas`"):
        PKIndexSampler(labels, 6, 4, seed=0, num_replicas=4)
    source = IndexSource(labels)
    ds = pk_batches(source, 6, 4, seed=0, image_size=8, augment=False, num_replicas=2)
    from tests.layers.distribute import mirrored_strategy

    strategy = mirrored_strategy()
    dist = iter(strategy.experimental_distribute_dataset(ds))
    for _ in range(3):
        _, y = next(dist)
        shards = [t.numpy() for t in strategy.experimental_local_results(y)]
        assert [s.shape[0] for s in shards] == [12, 12]
        for shard in shards:
            blocks = shard.reshape(3, 4)
            assert np.all(blocks == blocks[:, :1])  # K images of each of its identities
        assert not set(shards[0]) & set(shards[1])


def test_scales_to_200k_identities_with_a_constant_size_graph():
    def op_count(num_identities):
        labels = np.repeat(np.arange(num_identities), 2)
        sampler = PKIndexSampler(labels, 16, 4, seed=0)
        fn = sampler.indices_for.get_concrete_function(
            tf.TensorSpec([16], tf.int64), tf.TensorSpec([], tf.int64)
        )
        return len(fn.graph.get_operations()), sampler

    small, _ = op_count(1_000)
    large, sampler = op_count(200_000)
    assert small == large
    source = IndexSource(np.repeat(np.arange(200_000), 2))
    batches = _take(pk_batches(source, 16, 4, seed=0, image_size=8, augment=False), 3)
    for _, y in batches:
        assert len(set(y)) == 16 and y.max() < 200_000


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(identities_per_batch=0), "identities_per_batch"),
        (dict(images_per_identity=0), "images_per_identity"),
        (dict(identities_per_batch=50), "at least identities_per_batch=50"),
        (dict(min_images=0), "min_images"),
        (dict(num_replicas=0), "num_replicas"),
        (dict(seed=None), "seed"),
        (dict(images_per_identity=2.5), "images_per_identity"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    args = dict(identities_per_batch=4, images_per_identity=2, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        PKIndexSampler(np.repeat(np.arange(10), 3), **args)


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="labels"):
        PKIndexSampler(np.array([0.5, 1.0]), 1, 1, seed=0)
    with pytest.raises(ValueError, match="labels"):
        PKIndexSampler(np.array([-1, 0, 0]), 1, 1, seed=0)
