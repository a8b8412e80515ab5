import keras
import numpy as np
import pytest

from tests.losses import reference
from tests.losses import utils
from tests.losses.triplet_checks import TripletLossChecks
from tfface.losses import TripletSemiHardLoss
from tfface.losses import distances
from tfface.losses import mining
from tfface.losses import triplet_semihard_loss
from tfface.testing import TestCase
from tfface.testing.backend import value_and_gradients

# 1-D embeddings on a line, so every distance is |x_i - x_j| and can be checked by eye.
LINE_X = np.array([[0.0], [2.0], [-2.0], [5.0]], "float32")
LINE_Y = np.array([0, 0, 1, 1], "int32")


@keras.saving.register_keras_serializable(package="tfface_tests")
def _neg_dot(x):
    return -keras.ops.matmul(x, keras.ops.transpose(x))


class TripletSemiHardLossTest(TripletLossChecks, TestCase):
    loss_fn = staticmethod(triplet_semihard_loss)
    loss_cls = TripletSemiHardLoss
    reference_fn = staticmethod(reference.semihard_loss)
    reference_seeds = (0, 1, 2)

    def test_golden_line(self):
        """Points 0, 2, -2, 5 with labels 0, 0, 1, 1 and margin 4 (L2 = |x_i - x_j|):

                  a=0  a=1  a=2  a=3
            a=0 [  0    2    2    5 ]
            a=1 [  2    0    4    3 ]
            a=2 [  2    4    0    7 ]
            a=3 [  5    3    7    0 ]

        (0,1): d_ap = 2; negatives of 0 are 2 (point -2) and 5. The one at exactly 2 is NOT
               strictly farther, so the semi-hard negative is 5: relu(4 + 2 - 5) = 1.
        (1,0): d_ap = 2; negatives 4 and 3, both farther; the closest is 3: relu(4+2-3) = 3.
        (2,3): d_ap = 7; negatives 2 and 4, none farther: fall back to the largest, 4:
               relu(4 + 7 - 4) = 7.
        (3,2): d_ap = 7; negatives 5 and 3, none farther: largest 5: relu(4 + 7 - 5) = 6.
        Loss = (1 + 3 + 7 + 6) / 4 = 4.25, every mined triplet active.
        """
        loss, stats = triplet_semihard_loss(LINE_Y, LINE_X, margin=4.0, return_stats=True)
        self.assertAllClose(loss, 4.25)
        self.assertEqual(int(stats["positive_pairs"]), 4)
        self.assertAllClose(stats["active_fraction"], 1.0)

    def test_golden_inactive_triplets(self):
        """Same points, margin 1: (0,1) relu(1+2-5)=0, (1,0) relu(1+2-3)=0 (exactly at the
        margin, so inactive), (2,3) relu(1+7-4)=4, (3,2) relu(1+7-5)=3. Loss = 7/4, with
        2 of 4 mined triplets active.
        """
        loss, stats = triplet_semihard_loss(LINE_Y, LINE_X, margin=1.0, return_stats=True)
        self.assertAllClose(loss, 1.75)
        self.assertAllClose(stats["active_fraction"], 0.5)

    def test_tfa_docstring_example(self):
        """tfa's doc example: labels [0, 0], no negative at all. d_ap = sqrt(2); the
        negative falls back to the row minimum d(a, a) = 0: loss = 1 + sqrt(2)."""
        y = np.array([0, 0])
        x = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
        self.assertAllClose(triplet_semihard_loss(y, x), 1.0 + np.sqrt(2.0), atol=1e-6)

    def test_larger_batch_matches_reference_value(self):
        labels, emb = reference.random_batch(5, 40, 8, "mixed")
        for metric in utils.METRICS:
            expected = reference.semihard_loss(labels, emb, margin=0.3, metric=metric)
            actual = triplet_semihard_loss(labels, emb, margin=0.3, distance_metric=metric)
            self.assertAllClose(actual, expected, atol=1e-5, rtol=1e-5)

    def test_sort_search_path_large_classes(self):
        """Classes of 20 (K = 19 > SCAN_MAX_POSITIVES) take the sort+search strategy."""
        rng = np.random.default_rng(11)
        labels = rng.permutation(np.repeat(np.arange(3), 20)).astype("int32")
        emb = rng.normal(size=(60, 5)).astype("float32")
        self.assertGreater(19, mining.SCAN_MAX_POSITIVES)
        for metric in utils.METRICS:
            expected = reference.semihard_loss(labels, emb, margin=0.5, metric=metric)
            actual = triplet_semihard_loss(labels, emb, margin=0.5, distance_metric=metric)
            self.assertAllClose(actual, expected, atol=1e-5, rtol=1e-5)
        labels, emb = reference.random_batch(2, 30, 3, "one_class")  # K = 29, no negative
        self.assertAllClose(
            triplet_semihard_loss(labels, emb, 0.5), reference.semihard_loss(labels, emb, 0.5)
        )

    def test_scan_and_search_strategies_agree(self):
        """Both strategies of mining.semihard_negatives give the same values and gradients."""
        for kind, batch in (("mixed", 24), ("pk", 24), ("one_class", 12), ("no_positive", 6)):
            labels, emb = reference.random_batch(3, batch, 4, kind)
            results = []
            for scan_max in (0, 10_000):

                def mine(x, scan_max=scan_max, labels=labels):
                    dist = distances.pairwise_distance(x)
                    positive, negative = mining.pair_masks(keras.ops.convert_to_tensor(labels))
                    pos_dist, valid = mining.positive_columns(dist, positive)
                    neg = mining.semihard_negatives(dist, negative, pos_dist, scan_max)
                    total = keras.ops.sum(keras.ops.where(valid, neg * (1.0 + pos_dist), 0.0))
                    return neg, valid, total

                neg, valid, _ = mine(emb)
                _, (grad,) = value_and_gradients(lambda x, mine=mine: mine(x)[2], emb)
                neg, valid = keras.ops.convert_to_numpy(neg), keras.ops.convert_to_numpy(valid)
                results.append((neg[valid], grad))
            with self.subTest(kind=kind):
                self.assertAllClose(results[0][0], results[1][0])
                self.assertAllClose(results[0][1], results[1][1], atol=1e-6)

    def test_no_positive_pair_stats(self):
        labels, emb = reference.random_batch(0, 6, 4, "no_positive")
        _, stats = triplet_semihard_loss(labels, emb, return_stats=True)
        self.assertEqual(int(stats["positive_pairs"]), 0)
        self.assertEqual(float(stats["active_fraction"]), 0.0)

    def test_duplicate_embeddings_have_finite_gradient(self):
        emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], "float32")
        _, grad = utils.value_and_grad(triplet_semihard_loss, np.array([0, 0, 1, 1]), emb)
        self.assertAllFinite(grad)

    def test_callable_metric(self):
        labels, emb = reference.random_batch(3, 9, 4, "mixed")

        def dot_distance(x):
            return -keras.ops.matmul(x, keras.ops.transpose(x))

        d = -emb.astype(np.float64) @ emb.T.astype(np.float64)
        expected, pairs = 0.0, 0
        for a in range(9):
            negs = [d[a, n] for n in range(9) if labels[n] != labels[a]]
            for p in range(9):
                if p != a and labels[p] == labels[a]:
                    far = [v for v in negs if v > d[a, p]]
                    neg = min(far) if far else max(negs)
                    expected += max(1.0 + d[a, p] - neg, 0.0)
                    pairs += 1
        actual = triplet_semihard_loss(labels, emb, distance_metric=dot_distance)
        self.assertAllClose(actual, expected / pairs, atol=1e-5)

    @pytest.mark.tensorflow_only
    def test_graph_mode_with_unknown_batch(self):
        import tensorflow as tf

        labels, emb = reference.random_batch(7, 12, 4, "mixed")
        graph_fn = tf.function(
            lambda y, x: triplet_semihard_loss(y, x, margin=0.5),
            input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4])],
        )
        expected = reference.semihard_loss(labels, emb, margin=0.5)
        self.assertAllClose(graph_fn(labels, emb), expected, atol=1e-5)

    @pytest.mark.tensorflow_only
    def test_xla_compiled(self):
        import tensorflow as tf

        labels, emb = reference.random_batch(4, 16, 4, "mixed")
        compiled = tf.function(triplet_semihard_loss, jit_compile=True)
        expected = reference.semihard_loss(labels, emb)
        self.assertAllClose(compiled(tf.constant(labels), tf.constant(emb)), expected, atol=1e-5)

    @pytest.mark.tensorflow_only
    def test_mirrored_strategy_replica_context(self):
        import tensorflow as tf

        labels, emb = reference.random_batch(8, 16, 4, "mixed")
        from tests.layers.distribute import mirrored_strategy

        strategy = mirrored_strategy()
        dataset = tf.data.Dataset.from_tensor_slices((labels, emb)).batch(16)
        batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

        @tf.function
        def replica_step(y, x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = triplet_semihard_loss(y, x)
            return loss, tape.gradient(loss, x)

        losses, grads = strategy.run(replica_step, args=batch)
        per_replica = strategy.experimental_local_results(losses)
        self.assertLen(per_replica, 2)
        # Each replica mines inside its own half of the global batch.
        for i, value in enumerate(per_replica):
            y, x = labels[8 * i : 8 * (i + 1)], emb[8 * i : 8 * (i + 1)]
            self.assertAllClose(value, reference.semihard_loss(y, x), atol=1e-5)
        self.assertAllFinite(strategy.experimental_local_results(grads))

    def test_serialization_with_registered_callable_metric(self):
        revived = self.run_serialization_test(TripletSemiHardLoss(distance_metric=_neg_dot))
        self.assertIs(revived.distance_metric, _neg_dot)
        labels, emb = reference.random_batch(1, 8, 3, "mixed")
        expected = triplet_semihard_loss(labels, emb, distance_metric=_neg_dot)
        self.assertAllClose(revived(labels, emb), expected)


@pytest.mark.parametrize("batch", [2, 3])
def test_tiny_batches(batch):
    labels, emb = reference.random_batch(1, batch, 2, "mixed")
    np.testing.assert_allclose(
        float(triplet_semihard_loss(labels, emb)),
        reference.semihard_loss(labels, emb),
        atol=1e-6,
    )
