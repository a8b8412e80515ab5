import keras
import numpy as np

from tfface.layers import L2Normalize
from tfface.testing import TestCase


class L2NormalizeTest(TestCase):
    def test_layer_harness(self):
        x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
        self.run_layer_test(
            cls=L2Normalize,
            init_kwargs={"axis": -1},
            input_data=x,
            expected_output_shape=(4, 6),
            run_training_check=False,
        )

    def test_unit_norm_and_direction(self):
        """(3, 4) → (0.6, 0.8); rows of random data get norm 1 and keep their direction."""
        self.assertAllClose(L2Normalize()(np.array([[3.0, 4.0]])), np.array([[0.6, 0.8]]))
        x = np.random.default_rng(1).normal(size=(5, 7)).astype("float32") * 100
        y = np.asarray(L2Normalize()(x))
        self.assertAllClose(np.linalg.norm(y, axis=-1), np.ones(5), atol=1e-6)
        self.assertAllClose(y * np.linalg.norm(x, axis=-1, keepdims=True), x, rtol=1e-5)

    def test_zero_vector_is_zero_not_nan(self):
        self.assertAllEqual(L2Normalize()(np.zeros((1, 3), "float32")), np.zeros((1, 3)))

    def test_other_axis(self):
        x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
        y = np.asarray(L2Normalize(axis=0)(x))
        self.assertAllClose(np.linalg.norm(y, axis=0), np.ones(4), atol=1e-6)

    def test_mixed_float16_large_norm_does_not_overflow(self):
        """‖x‖ = 1000 gives Σx² = 10⁶ > 65,504 (float16 max); the sum runs in float32."""
        keras.config.set_dtype_policy("mixed_float16")
        try:
            y = L2Normalize()(np.array([[600.0, 800.0]], "float32"))
        finally:
            keras.config.set_dtype_policy("float32")
        self.assertEqual(keras.backend.standardize_dtype(y.dtype), "float16")
        self.assertAllClose(y, np.array([[0.6, 0.8]]), atol=1e-3)

    def test_rejects_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: epsilon=0"):
            L2Normalize(epsilon=0)
        with self.assertRaisesRegex(ValueError, "Received: axis='x'"):
            L2Normalize(axis="x")
