import functools

import keras
import numpy as np
import tensorflow as tf

from tests.losses import reference
from tests.losses import utils
from tfface.losses import TripletBatchAllLoss
from tfface.losses import triplet_batch_all_loss
from tfface.testing import TestCase

LINE_X = np.array([[0.0], [2.0], [-2.0], [5.0]], "float32")
LINE_Y = np.array([0, 0, 1, 1], "int32")


class TripletBatchAllLossTest(TestCase):
    def test_golden_line(self):
        """Points 0, 2, -2, 5 with labels 0, 0, 1, 1 (L2 = |x_i - x_j|):

                  a=0  a=1  a=2  a=3
            a=0 [  0    2    2    5 ]
            a=1 [  2    0    4    3 ]
            a=2 [  2    4    0    7 ]
            a=3 [  5    3    7    0 ]

        The 8 valid triplets (a, p, n) and margin + d_ap - d_an with margin 1:
          (0,1,2) 1+2-2 = 1   (0,1,3) 1+2-5 = -2   (1,0,2) 1+2-4 = -1
          (1,0,3) 1+2-3 = 0 (exactly zero: not active)
          (2,3,0) 1+7-2 = 6   (2,3,1) 1+7-4 = 4    (3,2,0) 1+7-5 = 3   (3,2,1) 1+7-3 = 5
        Active: 5 of 8, sum 1 + 6 + 4 + 3 + 5 = 19, loss 19 / 5 = 3.8.
        """
        loss, stats = triplet_batch_all_loss(LINE_Y, LINE_X, margin=1.0, return_stats=True)
        self.assertAllClose(loss, 3.8, atol=1e-6)
        self.assertEqual(int(stats["positive_pairs"]), 4)
        self.assertAllClose(stats["active_fraction"], 5 / 8)

    def test_golden_soft(self):
        """Soft: mean over all 8 triplets of softplus(d_ap - d_an):
        gaps 0, -3, -2, -1, 5, 3, 2, 4 (same table, margin dropped)."""
        loss, stats = triplet_batch_all_loss(LINE_Y, LINE_X, soft=True, return_stats=True)
        gaps = np.array([0.0, -3.0, -2.0, -1.0, 5.0, 3.0, 2.0, 4.0])
        self.assertAllClose(loss, np.mean(np.log1p(np.exp(gaps))), atol=1e-6)
        self.assertAllClose(stats["active_fraction"], 1.0)

    def test_matches_loop_reference(self):
        for soft in (False, True):
            utils.check_against_reference(
                self,
                triplet_batch_all_loss,
                reference.batch_all_loss,
                {"margin": 0.5, "soft": soft},
                {"margin": 0.5, "soft": soft},
                seeds=(0, 1),
                sizes=(6, 10),
            )

    def test_larger_batch_matches_reference_value(self):
        labels, emb = reference.random_batch(9, 30, 6, "mixed")
        expected = reference.batch_all_loss(labels, emb, margin=0.4)
        self.assertAllClose(triplet_batch_all_loss(labels, emb, margin=0.4), expected, atol=1e-5)

    def test_no_positive_pair_gives_zero_and_finite_gradient(self):
        labels, emb = reference.random_batch(0, 6, 4, "no_positive")
        for soft in (False, True):
            value, grad = utils.value_and_grad(triplet_batch_all_loss, labels, emb, soft=soft)
            self.assertEqual(value, 0.0)
            self.assertAllEqual(grad, np.zeros_like(emb))

    def test_float16_and_graph_mode(self):
        labels, emb = reference.random_batch(6, 16, 8, "mixed")
        for soft in (False, True):
            fn = tf.function(lambda y, x, s=soft: triplet_batch_all_loss(y, x, 0.5, soft=s))
            loss = fn(labels.astype("int64"), emb.astype("float16"))
            self.assertEqual(keras.backend.standardize_dtype(loss.dtype), "float32")
            expected = reference.batch_all_loss(
                labels, emb.astype("float16").astype("float32"), 0.5, soft=soft
            )
            self.assertAllClose(loss, expected, atol=1e-5)

    def test_serialization_and_class(self):
        revived = self.run_serialization_test(TripletBatchAllLoss(margin=0.7, soft=False))
        labels, emb = reference.random_batch(2, 10, 4, "mixed")
        self.assertAllClose(revived(labels, emb), triplet_batch_all_loss(labels, emb, 0.7))

    def test_compile_and_fit(self):
        rng = np.random.default_rng(2)
        x = rng.normal(size=(32, 6)).astype("float32")
        y = np.repeat(np.arange(8), 4).astype("int32")
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
        model.compile(optimizer="sgd", loss=TripletBatchAllLoss(margin=0.5))
        history = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))

    def test_memory_is_quadratic(self):
        """Hinge and soft paths: nothing above 4·B² elements at B=512 (B³ = 512·B²)."""
        largest, unknown = utils.max_intermediate_elements(triplet_batch_all_loss, 512, 16)
        self.assertLessEqual(largest, 4 * 512 * 512)
        self.assertEqual(unknown, 0)
        soft = functools.partial(triplet_batch_all_loss, soft=True)
        largest, unknown = utils.max_intermediate_elements(soft, 512, 16)
        self.assertLessEqual(largest, 4 * 512 * 512)
        self.assertEqual(unknown, 0)

        def differentiated_loop(labels, embeddings):
            gram = keras.ops.matmul(embeddings, keras.ops.transpose(embeddings))

            def body(i, total):
                return total + keras.ops.sum(keras.ops.sin(gram * keras.ops.cast(i, "float32")))

            return keras.ops.fori_loop(0, 8, body, keras.ops.zeros(()))

        # A while loop that keeps a [B, B] activation per step is counted as B·B².
        largest, _ = utils.max_intermediate_elements(differentiated_loop, 512, 16)
        self.assertGreater(largest, 4 * 512 * 512)
