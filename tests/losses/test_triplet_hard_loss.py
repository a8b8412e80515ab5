import keras
import numpy as np
import tensorflow as tf

from tests.losses import reference
from tests.losses import utils
from tfface.losses import TripletHardLoss
from tfface.losses import triplet_hard_loss
from tfface.testing import TestCase

LINE_X = np.array([[0.0], [2.0], [-2.0], [5.0], [1.0]], "float32")
LINE_Y = np.array([0, 0, 1, 1, 2], "int32")


class TripletHardLossTest(TestCase):
    def test_golden_line(self):
        """Points 0, 2, -2, 5, 1 with labels 0, 0, 1, 1, 2 and margin 4 (L2 = |x_i - x_j|):

                  a=0  a=1  a=2  a=3  a=4
            a=0 [  0    2    2    5    1 ]
            a=1 [  2    0    4    3    1 ]
            a=2 [  2    4    0    7    3 ]
            a=3 [  5    3    7    0    4 ]
            a=4 [  1    1    3    4    0 ]

        Hardest positive / hardest negative per anchor:
          a=0: 2 / 1 (point 1) → relu(2 - 1 + 4) = 5
          a=1: 2 / 1           → 5
          a=2: 7 / 2           → 9
          a=3: 7 / 3           → 8
          a=4 is a singleton: no positive, so it is left out (tfa would add
          relu(0 - 1 + 4) = 3, its "hardest positive" being d(a, a) = 0).
        Loss = (5 + 5 + 9 + 8) / 4 = 6.75; tfa gives (27 + 3) / 5 = 6.
        Soft: mean of softplus(1), softplus(1), softplus(5), softplus(4).
        """
        loss, stats = triplet_hard_loss(LINE_Y, LINE_X, margin=4.0, return_stats=True)
        self.assertAllClose(loss, 6.75)
        self.assertEqual(int(stats["positive_pairs"]), 4)
        self.assertAllClose(stats["active_fraction"], 1.0)
        soft = triplet_hard_loss(LINE_Y, LINE_X, soft=True)
        expected = np.mean(np.log1p(np.exp([1.0, 1.0, 5.0, 4.0])))
        self.assertAllClose(soft, expected, atol=1e-6)
        self.assertAllClose(
            reference.hard_loss_tfa_semantics(LINE_Y, LINE_X, margin=4.0), 6.0, atol=1e-12
        )

    def test_golden_inactive(self):
        """Margin 0.5: gaps are 1, 1, 5, 4 → all active; margin 0 with points moved so that
        a=0's gap is negative: with x = 0, 2, 9, 12 (labels 0, 0, 1, 1) the gaps are
        2 - 9 = -7, 2 - 7 = -5, 3 - 7 = -4, 3 - 10 = -7: every triplet inactive, loss 0."""
        x = np.array([[0.0], [2.0], [9.0], [12.0]], "float32")
        loss, stats = triplet_hard_loss(np.array([0, 0, 1, 1]), x, margin=0.0, return_stats=True)
        self.assertAllClose(loss, 0.0)
        self.assertAllClose(stats["active_fraction"], 0.0)

    def test_matches_loop_reference(self):
        for soft in (False, True):
            utils.check_against_reference(
                self,
                triplet_hard_loss,
                reference.hard_loss,
                {"margin": 0.5, "soft": soft},
                {"margin": 0.5, "soft": soft},
                seeds=(0, 1),
                sizes=(6, 11),
            )

    def test_no_positive_pair_gives_zero_and_finite_gradient(self):
        labels, emb = reference.random_batch(0, 6, 4, "no_positive")
        for soft in (False, True):
            value, grad = utils.value_and_grad(triplet_hard_loss, labels, emb, soft=soft)
            self.assertEqual(value, 0.0)
            self.assertAllEqual(grad, np.zeros_like(emb))

    def test_float16_and_graph_mode(self):
        labels, emb = reference.random_batch(6, 16, 8, "mixed")
        graph_fn = tf.function(lambda y, x: triplet_hard_loss(y, x, margin=0.5))
        loss = graph_fn(labels[:, None].astype("int64"), emb.astype("float16"))
        self.assertEqual(keras.backend.standardize_dtype(loss.dtype), "float32")
        expected = reference.hard_loss(labels, emb.astype("float16").astype("float32"), 0.5)
        self.assertAllClose(loss, expected, atol=1e-5)

    def test_invalid_arguments(self):
        labels, emb = reference.random_batch(0, 4, 2, "mixed")
        with self.assertRaisesRegex(ValueError, "distance_metric='l2'"):
            triplet_hard_loss(labels, emb, distance_metric="l2")
        with self.assertRaisesRegex(ValueError, "soft=1"):
            TripletHardLoss(soft=1)

    def test_serialization_and_class(self):
        loss = TripletHardLoss(margin=0.3, soft=True, distance_metric="squared-L2")
        revived = self.run_serialization_test(loss)
        self.assertTrue(revived.soft)
        labels, emb = reference.random_batch(2, 10, 4, "mixed")
        expected = triplet_hard_loss(labels, emb, 0.3, soft=True, distance_metric="squared-L2")
        self.assertAllClose(revived(labels, emb), expected)

    def test_compile_and_fit(self):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(32, 6)).astype("float32")
        y = np.repeat(np.arange(8), 4).astype("int32")
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
        model.compile(optimizer="sgd", loss=TripletHardLoss(margin=0.5))
        history = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))

    def test_memory_is_quadratic(self):
        largest, unknown = utils.max_intermediate_elements(triplet_hard_loss, 512, 16)
        self.assertLessEqual(largest, 4 * 512 * 512)
        self.assertEqual(unknown, 0)
