"""Issue #2 "done when": a Keras user puts `tfface.layers.ArcFace` and a `tfface.losses`
loss in one functional model, fits one epoch, saves `.keras` and reloads it elsewhere."""

import os

import keras
import numpy as np
import pytest

import tfface
from tfface.testing import TestCase


def _two_headed_model(num_classes=8, dim=16):
    images = keras.Input((12, 12, 3), name="images")
    labels = keras.Input((), dtype="int64", name="labels")
    x = keras.layers.Conv2D(8, 3, activation="relu")(images)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(dim)(x)
    embeddings = tfface.layers.L2Normalize(name="embedding")(x)
    logits = tfface.layers.ArcFace(num_classes, scale=16.0, margin=0.3, name="arcface")(
        [embeddings, labels]
    )
    model = keras.Model([images, labels], {"embedding": embeddings, "arcface": logits})
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={
            "embedding": tfface.losses.TripletSemiHardLoss(margin=0.2),
            "arcface": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
    )
    return model


def _data(n=64, num_classes=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), n // num_classes).astype("int64")
    images = rng.normal(size=(n, 12, 12, 3)).astype("float32") + labels[:, None, None, None]
    return images, labels


class KerasUserStoryTest(TestCase):
    def test_fit_one_epoch_and_reload_in_process(self):
        images, labels = _data()
        model = _two_headed_model()
        history = model.fit(
            [images, labels],
            {"embedding": labels, "arcface": labels},
            batch_size=32,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        path = os.path.join(self.get_temp_dir(), "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        # The compiled losses come back as tfface objects with their configuration.
        losses = reloaded.loss
        self.assertIsInstance(losses["embedding"], tfface.losses.TripletSemiHardLoss)
        self.assertEqual(losses["embedding"].get_config()["margin"], 0.2)
        expected = model([images, labels], training=False)
        actual = reloaded([images, labels], training=False)
        for key in ("embedding", "arcface"):
            np.testing.assert_array_equal(np.asarray(actual[key]), np.asarray(expected[key]))

    @pytest.mark.slow
    def test_reload_in_fresh_process_without_custom_objects(self):
        images, labels = _data()
        model = _two_headed_model()
        model.fit(
            [images, labels],
            {"embedding": labels, "arcface": labels},
            batch_size=32,
            epochs=1,
            verbose=0,
        )
        inference = keras.Model(model.inputs[0], model.get_layer("embedding").output)
        self.run_model_saving_test(inference, images, fresh_process=True)
        self.run_model_saving_test(model, [images, labels], fresh_process=False)
