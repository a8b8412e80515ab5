import keras
import numpy as np
import pytest

from tfface import models
from tfface.testing import test_case


def _pixels(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, size, size, 3)).astype("float32")


class BuildEmbeddingModelTest(test_case.TestCase):
    def test_normalisation_backbone_l2(self):
        """Output = backbone(normalised pixels) / ‖·‖, for both normalisation modes."""
        for mode, normalise in [
            ("insightface", lambda x: (x / 255.0 - 0.5) / 0.5),
            ("facenet", lambda x: (x - 127.5) / 128.0),
        ]:
            backbone = models.create_backbone("small_cnn", image_size=32, embedding_dim=16)
            model = models.build_embedding_model(
                backbone, image_size=32, embedding_dim=16, normalization=mode
            )
            x = _pixels(4, 32)
            raw = keras.ops.convert_to_numpy(backbone(normalise(x), training=False))
            expected = raw / np.linalg.norm(raw, axis=-1, keepdims=True)
            self.assertAllClose(model(x, training=False), expected, atol=1e-5, rtol=1e-5)

    def test_name_and_kwargs_reach_the_backbone(self):
        model = models.build_embedding_model(
            "small_cnn", image_size=32, embedding_dim=8, widths=(8, 16)
        )
        self.assertEqual(tuple(model.output.shape), (None, 8))
        self.assertEqual(model.layers[2].get_layer("stage2_conv_conv").filters, 16)

    def test_mismatches_raise(self):
        backbone = models.create_backbone("small_cnn", image_size=32, embedding_dim=8)
        with self.assertRaisesRegex(ValueError, "image_size`=48"):
            models.build_embedding_model(backbone, image_size=48, embedding_dim=8)
        with self.assertRaisesRegex(ValueError, "`embedding_dim`=16"):
            models.build_embedding_model(backbone, image_size=32, embedding_dim=16)
        with self.assertRaisesRegex(ValueError, "only apply when `backbone` is a registered"):
            models.build_embedding_model(backbone, image_size=32, embedding_dim=8, widths=(8,))
        with self.assertRaisesRegex(ValueError, "Received: backbone=3"):
            models.build_embedding_model(3, image_size=32, embedding_dim=8)
        with self.assertRaisesRegex(ValueError, "mode"):
            models.build_embedding_model(
                "small_cnn", image_size=32, embedding_dim=8, normalization="caffe"
            )

    def test_mixed_precision_output_is_float32_unit_norm(self):
        keras.config.set_dtype_policy("mixed_float16")
        model = models.build_embedding_model("small_cnn", image_size=32, embedding_dim=8)
        out = model(_pixels(2, 32), training=False)
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "float32")
        norms = np.linalg.norm(keras.ops.convert_to_numpy(out), axis=-1)
        self.assertAllClose(norms, np.ones(2), atol=1e-5)

    @pytest.mark.slow
    def test_saving_in_a_fresh_process(self):
        model = models.build_embedding_model("mobilefacenet", image_size=32, embedding_dim=8)
        self.run_model_saving_test(model, _pixels(2, 32), fresh_process=True)

    def test_saving_in_process(self):
        model = models.build_embedding_model("small_cnn", image_size=32, embedding_dim=8)
        self.run_model_saving_test(model, _pixels(2, 32), fresh_process=False)
