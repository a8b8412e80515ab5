import numpy as np
import pytest

from tfface.layers import ImageNormalization
from tfface.testing import TestCase


class ImageNormalizationTest(TestCase):
    def test_layer_harness(self):
        x = np.random.default_rng(0).uniform(0, 255, size=(2, 4, 4, 3)).astype("float32")
        for mode in ("insightface", "facenet"):
            with self.subTest(mode=mode):
                self.run_layer_test(
                    cls=ImageNormalization,
                    init_kwargs={"mode": mode},
                    input_data=x,
                    expected_output_shape=x.shape,
                    run_training_check=False,
                )

    def test_golden_values(self):
        """insightface: ((x/255) − 0.5)/0.5 maps 0, 127.5, 255 → −1, 0, 1;
        facenet: (x − 127.5)/128 maps them → −0.99609375, 0, 0.99609375."""
        x = np.array([0.0, 127.5, 255.0], "float32")
        self.assertAllClose(ImageNormalization("insightface")(x), np.array([-1.0, 0.0, 1.0]))
        self.assertAllClose(
            ImageNormalization("facenet")(x), np.array([-127.5, 0.0, 127.5]) / 128.0
        )

    def test_uint8_input(self):
        x = np.arange(0, 256, dtype="uint8").reshape(1, 16, 16, 1)
        expected = (x.astype("float64") / 255.0 - 0.5) / 0.5
        self.assertAllClose(ImageNormalization()(x), expected, atol=1e-6)

    @pytest.mark.tensorflow_only
    def test_uint8_input_in_tf_data(self):
        import tensorflow as tf

        x = np.arange(0, 256, dtype="uint8").reshape(1, 16, 16, 1)
        expected = (x.astype("float64") / 255.0 - 0.5) / 0.5
        layer = ImageNormalization()
        dataset = tf.data.Dataset.from_tensor_slices(x).batch(1).map(layer)
        self.assertAllClose(next(iter(dataset)), expected, atol=1e-6)

    def test_rejects_unknown_mode(self):
        with self.assertRaisesRegex(ValueError, "Received: mode='vggface'"):
            ImageNormalization("vggface")
