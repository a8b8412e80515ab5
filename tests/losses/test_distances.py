import keras
import numpy as np

from tests.losses import reference
from tfface.losses import distances
from tfface.testing import TestCase
from tfface.testing.backend import value_and_gradients


class DistancesTest(TestCase):
    def test_metrics_match_loops(self):
        _, emb = reference.random_batch(0, 7, 5, "mixed")
        emb = emb * np.arange(1, 8, dtype="float32")[:, None]  # unnormalised rows
        for metric in distances.DISTANCE_METRICS:
            with self.subTest(metric=metric):
                actual = distances.get(metric)(emb)
                expected = reference.distance_matrix(emb, metric)
                self.assertAllClose(actual, expected, atol=1e-5, rtol=1e-5)

    def test_zero_diagonal_and_duplicates_have_finite_gradient(self):
        emb = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], "float32")
        d = keras.ops.convert_to_numpy(distances.pairwise_distance(emb))
        _, (grad,) = value_and_gradients(
            lambda x: keras.ops.sum(distances.pairwise_distance(x)), emb
        )
        self.assertAllEqual(np.diag(d), np.zeros(3))
        self.assertEqual(float(d[0, 1]), 0.0)
        self.assertAllFinite(grad)

    def test_get_rejects_unknown_and_checks_callable_shape(self):
        with self.assertRaisesRegex(ValueError, r"'L2'.*distance_metric='cos'"):
            distances.get("cos")
        with self.assertRaisesRegex(ValueError, r"\[batch, batch\]"):
            distances.get(lambda x: keras.ops.sum(x, axis=1))(np.ones((3, 2), "float32"))
