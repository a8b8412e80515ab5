import math
import os

import keras
import numpy as np
import pytest

from tests.layers import reference
from tests.layers.distribute import mirrored_strategy
from tests.layers.golden import at_angles
from tests.layers.head_test_base import DIM
from tests.layers.head_test_base import HeadChecks
from tests.layers.head_test_base import random_case
from tfface.layers import SphereFace
from tfface.testing import TestCase


class SphereFaceTest(HeadChecks, TestCase):
    layer_cls = SphereFace
    init_kwargs = {"num_classes": 6}
    # iteration 5000: 1000 / (1 + 0.12 · 5000) = 1.66 < λ_min, so λ = 5.
    iteration = 5000
    reference_params = {"margin": 4, "lambda": 5.0}

    def test_layer_harness_training_inputs(self):
        x, _, labels = random_case()
        self.run_layer_test(
            cls=SphereFace,
            init_kwargs=self.init_kwargs,
            input_data=[x, labels],
            expected_output_shape=(x.shape[0], 6),
            expected_output_dtype="float32",
            expected_mixed_precision_output_dtype="float32",
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=1,
        )

    def test_golden_sixty_degrees(self):
        """m = 4, θ = 60° ∈ [π/4, π/2] so k = 1: ψ = (−1)¹ cos 240° − 2 = 0.5 − 2 = −1.5.

        ‖x‖ = 2, λ = 0: target logit 2 · (−1.5) = −3. λ = 5: 2 · (5 · 0.5 − 1.5) / 6 = 1/3.
        Class 1 (θ = 30°) and inference: ‖x‖ cos θ, i.e. 2 · 0.8660254 and 2 · 0.5.
        """
        head = SphereFace(num_classes=2, base=0.0, lambda_min=0.0)
        x = at_angles(head, [60.0], radius=2.0)
        expected = np.array([[-3.0, 2 * math.cos(math.radians(30))]])
        self.assertAllClose(head([x, np.array([0])]), expected, atol=1e-5)
        self.assertAllClose(head(x), np.array([[1.0, expected[0, 1]]]), atol=1e-5)

        head = SphereFace(num_classes=2, base=0.0, lambda_min=5.0)
        x = at_angles(head, [60.0], radius=2.0)
        self.assertAllClose(head([x, np.array([0])])[0, 0], 1.0 / 3.0, atol=1e-5)

    def test_psi_is_monotonic_and_spans_one_to_one_minus_2m(self):
        """ψ decreases on [0, π] from ψ(0) = 1 to ψ(π) = 1 − 2m, and is continuous."""
        for m in (1, 2, 3, 4):
            head = SphereFace(num_classes=2, margin=m)
            cosine = np.cos(np.linspace(0.0, np.pi, 2001)).astype("float32")
            psi = keras.ops.convert_to_numpy(head.psi(cosine))
            self.assertAllClose(psi[0], 1.0, atol=1e-5)
            self.assertAllClose(psi[-1], 1.0 - 2 * m, atol=1e-4)
            self.assertTrue(np.all(np.diff(psi) < 1e-5), m)
            self.assertLess(np.abs(np.diff(psi)).max(), 0.05)

    def test_counter_advances_only_on_training_calls(self):
        x, w, labels = random_case()
        head = SphereFace(num_classes=w.shape[1])
        head([x, labels])
        self.assertEqual(int(head.iteration.numpy()), 0)
        head([x, labels], training=True)
        head([x, labels], training=True)
        head(x, training=True)  # inference logits: no margin, no step
        head([x, labels], training=False)
        self.assertEqual(int(head.iteration.numpy()), 2)
        self.assertEqual(keras.backend.standardize_dtype(head.iteration.dtype), "int64")
        self.assertFalse(head.iteration.trainable)

    def test_lambda_follows_schedule(self):
        head = SphereFace(num_classes=3)
        for iteration in (0, 1, 10, 100, 1000, 10**6):
            self.assertAllClose(
                head.annealing_lambda(iteration),
                reference.annealing_lambda(iteration),
                rtol=1e-6,
                msg=f"iteration={iteration}",
            )
        head = SphereFace(num_classes=3, base=50.0, gamma=0.5, power=2.0, lambda_min=0.1)
        self.assertAllClose(
            head.annealing_lambda(7),
            reference.annealing_lambda(7, base=50.0, gamma=0.5, power=2.0, lambda_min=0.1),
            rtol=1e-6,
        )

    def test_training_calls_use_incremented_lambda(self):
        """The n-th training call uses λ(n), as in SphereFace's Caffe layer."""
        x, w, labels = random_case(2)
        head = SphereFace(num_classes=w.shape[1], base=10.0, gamma=0.5)
        head.build(x.shape)
        head.kernel.assign(w)
        for n in (1, 2, 3):
            logits = head([x, labels], training=True)
            lam = reference.annealing_lambda(n, base=10.0, gamma=0.5)
            expected = reference.head_logits(
                "SphereFace",
                x.astype("float64"),
                w.astype("float64"),
                labels,
                {"margin": 4, "lambda": lam},
            )
            self.assertAllClose(logits, expected, atol=1e-4, msg=f"call {n}")

    @pytest.mark.tensorflow_only
    def test_counter_survives_checkpoint(self):
        import tensorflow as tf

        x, w, labels = random_case()
        head = SphereFace(num_classes=w.shape[1])
        for _ in range(3):
            head([x, labels], training=True)
        path = tf.train.Checkpoint(head=head).write(os.path.join(self.get_temp_dir(), "ckpt"))

        restored = SphereFace(num_classes=w.shape[1])
        restored.build(x.shape)
        tf.train.Checkpoint(head=restored).read(path).assert_consumed()
        self.assertEqual(int(restored.iteration.numpy()), 3)
        self.assertAllClose(restored([x, labels]), head([x, labels]), atol=0)
        restored([x, labels], training=True)
        self.assertEqual(int(restored.iteration.numpy()), 4)

    def test_counter_counts_fit_steps_and_survives_keras_save(self):
        x, _, labels = random_case(5, batch=12)
        embeddings = keras.Input((DIM,))
        label_input = keras.Input((), dtype="int64")
        head = SphereFace(num_classes=6)
        model = keras.Model([embeddings, label_input], head([embeddings, label_input]))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit([x, labels], labels, batch_size=4, epochs=1, verbose=0)
        self.assertEqual(int(head.iteration.numpy()), 3)
        reloaded = self.run_model_saving_test(model, [x, labels])
        self.assertEqual(int(reloaded.layers[-1].iteration.numpy()), 3)

    @pytest.mark.tensorflow_only
    def test_counter_under_mirrored_strategy_counts_steps_not_replicas(self):
        import tensorflow as tf

        x, _, labels = random_case(6, batch=8)
        strategy = mirrored_strategy()
        with strategy.scope():
            head = SphereFace(num_classes=6)
            head.build(x.shape)
        dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8).repeat(2)

        @tf.function
        def step(batch):
            return strategy.run(lambda a, b: head([a, b], training=True), args=batch)

        for batch in strategy.experimental_distribute_dataset(dataset):
            step(batch)
        self.assertEqual(int(head.iteration.numpy()), 2)

    def test_rejects_bad_arguments(self):
        for kwargs, message in (
            ({"margin": 0}, "Received: margin=0"),
            ({"margin": 2.5}, "Received: margin=2.5"),
            ({"base": -1.0}, "Received: base=-1.0"),
            ({"gamma": -0.1}, "Received: gamma=-0.1"),
            ({"power": -1.0}, "Received: power=-1.0"),
            ({"lambda_min": -5.0}, "Received: lambda_min=-5.0"),
        ):
            with self.assertRaisesRegex(ValueError, message):
                SphereFace(num_classes=3, **kwargs)


class SphereFaceNoAnnealingTest(HeadChecks, TestCase):
    layer_cls = SphereFace
    init_kwargs = {"num_classes": 6, "margin": 3, "base": 0.0, "lambda_min": 0.0}
    reference_params = {"margin": 3, "lambda": 0.0}
