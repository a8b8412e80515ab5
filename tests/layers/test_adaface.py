import math

import keras
import numpy as np
import pytest

from tests.layers import reference
from tests.layers.distribute import mirrored_strategy
from tests.layers.golden import at_angles
from tests.layers.golden import deg
from tests.layers.head_test_base import DIM
from tests.layers.head_test_base import HeadChecks
from tests.layers.head_test_base import random_case
from tfface.layers import AdaFace
from tfface.testing import TestCase

EPS = 1e-3


def norm_statistics(norms):
    """(mean, Bessel-corrected std) of a list of norms, by loops; std 0 for one sample."""
    total = 0.0
    for n in norms:
        total += n
    mean = total / len(norms)
    squares = 0.0
    for n in norms:
        squares += (n - mean) ** 2
    return mean, math.sqrt(squares / max(len(norms) - 1, 1))


def ema_step(x, mean, std, t_alpha=0.01):
    """One training call's update of (μ, σ) from the clipped norms of x [B, D]."""
    norms = [min(100.0, max(1e-3, n)) for n in reference.cosine_table(x, np.eye(x.shape[1]))[0]]
    batch_mean, batch_std = norm_statistics(norms)
    return (
        t_alpha * batch_mean + (1 - t_alpha) * mean,
        t_alpha * batch_std + (1 - t_alpha) * std,
    )


def adaface_logits(x, w, labels, mean, std, scale=64.0, m=0.4, h=0.333, frozen_x=None):
    """Kim et al. (CVPR 2022): s·(cos(θ_y + g_angle) − g_add) on the target, s·cos θ_j else.

    ẑ = clip(h·(‖z‖ − μ)/(σ + ε), −1, 1), g_angle = −m·ẑ, g_add = m·ẑ + m; θ_y from cos θ_y
    clamped to ±(1 − ε), θ_y + g_angle clipped to [ε, π − ε] (official head.py).
    `frozen_x` supplies the norms (they carry no gradient in the layer).
    """
    norms, table = reference.cosine_table(x, w)
    if frozen_x is not None:
        norms = reference.cosine_table(frozen_x, w)[0]
    logits = np.zeros((x.shape[0], w.shape[1]))
    for i in range(x.shape[0]):
        for j in range(w.shape[1]):
            value = table[i][j]
            if labels is not None and j == int(labels[i]):
                z = min(100.0, max(1e-3, norms[i]))
                z_hat = min(1.0, max(-1.0, h * (z - mean) / (std + EPS)))
                g_angle, g_add = -m * z_hat, m * z_hat + m
                theta = math.acos(min(1.0 - EPS, max(-1.0 + EPS, value)))
                theta_m = min(math.pi - EPS, max(EPS, theta + g_angle))
                value = math.cos(theta_m) - g_add
            logits[i, j] = scale * value
    return logits


class AdaFaceTest(HeadChecks, TestCase):
    layer_cls = AdaFace
    init_kwargs = {"num_classes": 6}

    def reference_logits(self, x, w, labels, frozen_x=None):
        return adaface_logits(x, w, labels, 20.0, 100.0, frozen_x=frozen_x)

    def test_layer_harness_training_inputs(self):
        x, _, labels = random_case()
        self.run_layer_test(
            cls=AdaFace,
            init_kwargs=self.init_kwargs,
            input_data=[x, labels],
            expected_output_shape=(x.shape[0], 6),
            expected_output_dtype="float32",
            expected_mixed_precision_output_dtype="float32",
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=2,
        )

    def test_golden_norms_at_mean_and_one_std_either_side(self):
        """θ = 60°, m = 0.4, h = 0.333, μ = 20, σ = 100 (the initial statistics).

        ‖z‖ = 20 (= μ): ẑ = 0, g_angle = 0, g_add = 0.4: 64·(cos 60° − 0.4) = 6.4 (CosFace).
        ‖z‖ = 320 clips to 100: ẑ = 0.333·80/100.001 = 0.266397, g_angle = −0.106559,
        g_add = 0.506559: 64·(cos(1.0471976 − 0.106559) − 0.506559) = 64·(0.589272 −
        0.506559) = 5.2936. ‖z‖ = 0.5: ẑ = 0.333·(−19.5)/100.001 = −0.064934,
        g_angle = 0.025974, g_add = 0.374026: 64·(cos 1.0731713 − 0.374026)
        = 64·(0.477340 − 0.374026) = 6.6121.
        """
        head = AdaFace(num_classes=2)
        x = at_angles(head, [60.0, 60.0, 60.0]) * np.array([[20.0], [320.0], [0.5]], "float32")
        logits = keras.ops.convert_to_numpy(head([x, np.zeros(3, "int64")]))[:, 0]
        expected = []
        for norm in (20.0, 100.0, 0.5):
            z_hat = 0.333 * (norm - 20.0) / (100.0 + EPS)
            expected.append(64 * (math.cos(deg(60) - 0.4 * z_hat) - (0.4 + 0.4 * z_hat)))
        self.assertAllClose(logits, expected, atol=1e-4)
        self.assertAllClose(logits, [6.4, 5.2936, 6.6121], atol=2e-4)

    def test_margin_scaler_clips_at_plus_minus_one(self):
        """σ = 0.5 saturates ẑ: ‖z‖ = 30 → ẑ = 1, g_angle = −m, g_add = 2m:
        64·(cos(60° − 0.4) − 0.8); ‖z‖ = 10 → ẑ = −1, g_angle = +m, g_add = 0:
        64·cos(60° + 0.4), ArcFace."""
        head = AdaFace(num_classes=2)
        x = at_angles(head, [60.0, 60.0]) * np.array([[30.0], [10.0]], "float32")
        head.batch_mean.assign(20.0)
        head.batch_std.assign(0.5)
        logits = keras.ops.convert_to_numpy(head([x, np.zeros(2, "int64")]))[:, 0]
        self.assertAllClose(
            logits,
            [64 * (math.cos(deg(60) - 0.4) - 0.8), 64 * math.cos(deg(60) + 0.4)],
            atol=1e-4,
        )

    def test_ema_updates_only_on_training_calls_and_is_used_at_once(self):
        x, w, labels = random_case(1, batch=8)
        x = x * np.linspace(1.0, 40.0, 8, dtype="float32")[:, None]
        head = self.make_head(x, w)
        mean, std = 20.0, 100.0
        head([x, labels])
        head([x, labels], training=False)
        head(x, training=True)  # inference logits: nothing to update
        self.assertAllClose([head.batch_mean.numpy(), head.batch_std.numpy()], [mean, std])
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        for step in range(3):
            logits = head([x, labels], training=True)
            mean, std = ema_step(x64, mean, std)
            self.assertAllClose(
                [head.batch_mean.numpy(), head.batch_std.numpy()], [mean, std], rtol=1e-5
            )
            # The training call already used the updated statistics.
            expected = adaface_logits(x64, w64, labels, mean, std)
            self.assertAllClose(logits, expected, atol=2e-4, msg=f"step {step}")
        self.assertAllClose(
            head([x, labels]), adaface_logits(x64, w64, labels, mean, std), atol=2e-4
        )

    def test_single_sample_batch_has_zero_std(self):
        head = AdaFace(num_classes=2, t_alpha=0.5)
        x = at_angles(head, [30.0]) * 7.0
        head([x, np.zeros(1, "int64")], training=True)
        self.assertAllClose(head.batch_mean.numpy(), 0.5 * 7.0 + 0.5 * 20.0, rtol=1e-6)
        self.assertAllClose(head.batch_std.numpy(), 0.5 * 100.0, rtol=1e-6)

    def test_no_gradient_through_the_norm_in_the_margin(self):
        """Scaling x leaves cos θ unchanged; with the norm detached the loss's gradient
        along x itself (the radial direction) is exactly zero."""
        from tfface.testing.backend import value_and_gradients

        x, w, labels = random_case(2)
        head = self.make_head(x, w)
        head.batch_std.assign(1.0)  # a margin that is sensitive to the norm

        def loss(a):
            logits = head([a, labels])
            return keras.ops.mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )

        _, (grad,) = value_and_gradients(loss, x)
        radial = np.sum(grad * x, axis=1)
        self.assertAllClose(radial, np.zeros(len(x)), atol=1e-4)

    def test_statistics_survive_keras_save(self):
        x, _, labels = random_case(3, batch=12)
        x = x * 10.0
        embeddings = keras.Input((DIM,))
        label_input = keras.Input((), dtype="int64")
        head = AdaFace(num_classes=6, t_alpha=0.5)
        model = keras.Model([embeddings, label_input], head([embeddings, label_input]))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit([x, labels], labels, batch_size=4, epochs=1, verbose=0)
        self.assertNotAlmostEqual(float(head.batch_mean.numpy()), 20.0, places=3)
        reloaded = self.run_model_saving_test(model, [x, labels])
        revived = reloaded.layers[-1]
        self.assertAllClose(revived.batch_mean.numpy(), head.batch_mean.numpy(), atol=0)
        self.assertAllClose(revived.batch_std.numpy(), head.batch_std.numpy(), atol=0)

    @pytest.mark.tensorflow_only
    def test_mirrored_strategy_averages_the_replicas_updates(self):
        import tensorflow as tf

        x, _, labels = random_case(6, batch=8)
        x = x * np.linspace(2.0, 30.0, 8, dtype="float32")[:, None]
        strategy = mirrored_strategy()
        with strategy.scope():
            head = AdaFace(num_classes=6)
            head.build(x.shape)
        dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8)

        @tf.function
        def step(batch):
            return strategy.run(lambda a, b: head([a, b], training=True), args=batch)

        for batch in strategy.experimental_distribute_dataset(dataset):
            step(batch)
        x64 = x.astype(np.float64)
        halves = [ema_step(x64[:4], 20.0, 100.0), ema_step(x64[4:], 20.0, 100.0)]
        expected = np.mean(np.array(halves), axis=0)
        for name, value in (("batch_mean", expected[0]), ("batch_std", expected[1])):
            copies = [c.numpy() for c in getattr(head, name).value.values]
            self.assertLen(copies, 2)
            self.assertAllClose(copies, [value, value], rtol=1e-5, msg=name)

    def test_rejects_bad_arguments(self):
        for kwargs, message in (
            ({"margin": -0.1}, "Received: margin=-0.1"),
            ({"h": -1.0}, "Received: h=-1.0"),
            ({"t_alpha": 0.0}, "Received: t_alpha=0.0"),
            ({"t_alpha": 1.5}, "Received: t_alpha=1.5"),
            ({"scale": None}, "Received: scale=None"),
        ):
            with self.assertRaisesRegex(ValueError, message):
                AdaFace(num_classes=3, **kwargs)


class AdaFaceSpreadStatisticsTest(HeadChecks, TestCase):
    """Statistics at the scale of the random embeddings (‖x‖ ≈ 0.5–3.5), so ẑ spans
    [−1, 1] and saturates: the loop reference covers both clips and the norm's effect."""

    layer_cls = AdaFace
    init_kwargs = {"num_classes": 6, "margin": 0.5, "h": 0.5, "scale": 32.0}
    state = {"batch_mean": 1.8, "batch_std": 0.4}

    def reference_logits(self, x, w, labels, frozen_x=None):
        return adaface_logits(x, w, labels, 1.8, 0.4, scale=32.0, m=0.5, h=0.5, frozen_x=frozen_x)
