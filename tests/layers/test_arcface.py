import math

import keras
import numpy as np
import pytest

from tests.layers.golden import at_angles
from tests.layers.golden import deg
from tests.layers.head_test_base import HeadChecks
from tfface.layers import ArcFace
from tfface.testing import TestCase


class ArcFaceTest(HeadChecks, TestCase):
    layer_cls = ArcFace
    init_kwargs = {"num_classes": 6}
    reference_params = {"scale": 64.0, "margin": 0.5}

    def test_golden_sixty_degrees(self):
        """θ = 60°, m = 0.5, s = 64.

        Target: 64 · cos(60° + 0.5 rad) = 64 · cos(1.5471976) = 64 · 0.0235951 = 1.51009.
        Non-target (class 1 at 30°): 64 · cos 30° = 55.42563. Inference: 64 · cos 60° = 32.
        """
        head = ArcFace(num_classes=2)
        x = at_angles(head, [60.0])
        logits = head([x, np.array([0])])
        self.assertAllClose(
            logits, np.array([[64 * math.cos(deg(60) + 0.5), 64 * math.cos(deg(30))]]), atol=1e-4
        )
        self.assertAllClose(head(x), np.array([[32.0, 64 * math.cos(deg(30))]]), atol=1e-4)

    def test_golden_fallback_past_pi_minus_margin(self):
        """θ = 170° > π − m = 151.35°: cos(θ + m) would rise again, so the target is

        cos θ − m · sin(π − m) = −0.9848078 − 0.5 · 0.4794255 = −1.2245205, times 64 = −78.3693.
        """
        head = ArcFace(num_classes=2)
        x = at_angles(head, [170.0])
        expected = 64 * (math.cos(deg(170)) - 0.5 * math.sin(math.pi - 0.5))
        self.assertAllClose(head([x, np.array([0])])[0, 0], expected, atol=1e-4)

    def test_golden_easy_margin(self):
        """easy_margin: θ = 100° has cos θ < 0, so no margin: 64 · cos 100° = −11.1137;
        θ = 60° keeps the margin: 64 · cos(60° + 0.5) = 1.51009."""
        head = ArcFace(num_classes=2, easy_margin=True)
        x = at_angles(head, [100.0, 60.0])
        logits = head([x, np.array([0, 0])])
        self.assertAllClose(
            logits[:, 0],
            np.array([64 * math.cos(deg(100)), 64 * math.cos(deg(60) + 0.5)]),
            atol=1e-4,
        )

    def test_target_logit_decreases_with_angle(self):
        """With the fallback, the target logit is strictly decreasing on θ ∈ [0°, 180°]."""
        head = ArcFace(num_classes=2)
        degrees = np.linspace(0.0, 180.0, 721)
        x = at_angles(head, degrees)
        target = keras.ops.convert_to_numpy(head([x, np.zeros(len(degrees), "int64")]))[:, 0]
        self.assertTrue(np.all(np.diff(target) < 0), np.diff(target).max())

    def test_fallback_jumps_down_at_pi_minus_margin(self):
        """The fallback is monotone, not continuous (issue 7, defect 7).

        Just below θ = π − m the target is s · cos(θ + m) → s · cos π = −64; just above it
        the fallback gives s · (cos(π − m) − m · sin(π − m)) = 64 · (−cos m − m · sin m)
        = 64 · (−0.8775826 − 0.2397128) = −71.5069: a drop of 7.5069 logits, one-sided.
        """
        m, s, eps = 0.5, 64.0, 1e-3
        head = ArcFace(num_classes=2, scale=s, margin=m)
        theta = math.pi - m
        x = at_angles(head, np.degrees([theta - eps, theta + eps]))
        below, above = keras.ops.convert_to_numpy(head([x, np.zeros(2, "int64")]))[:, 0]
        jump = s * (math.cos(m) + m * math.sin(m) - 1.0)
        self.assertAllClose(jump, 7.5069, atol=1e-3)
        # Within eps of θ = π − m each side moves by at most s · eps; the gap is the jump.
        self.assertAllClose(below, -s, atol=s * eps)
        self.assertAllClose(above, -s * (math.cos(m) + m * math.sin(m)), atol=s * eps)
        self.assertAllClose(below - above, jump, atol=2 * s * eps)
        self.assertGreater(below, above)

    def test_zero_margin_is_normface(self):
        x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        head = ArcFace(num_classes=5, margin=0.0)
        labels = np.array([0, 1, 2, 4])
        self.assertAllClose(head([x, labels]), head(x), atol=1e-5)

    def test_rejects_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: margin=-0.1"):
            ArcFace(num_classes=2, margin=-0.1)
        with self.assertRaisesRegex(ValueError, "Received: margin=2.0"):
            ArcFace(num_classes=2, margin=2.0)
        with self.assertRaisesRegex(ValueError, "Received: scale=0"):
            ArcFace(num_classes=2, scale=0)
        with self.assertRaisesRegex(ValueError, "Received: easy_margin=1"):
            ArcFace(num_classes=2, easy_margin=1)


class ArcFaceEasyMarginTest(HeadChecks, TestCase):
    layer_cls = ArcFace
    init_kwargs = {"num_classes": 6, "margin": 0.4, "scale": 30.0, "easy_margin": True}
    reference_params = {"scale": 30.0, "margin": 0.4, "easy_margin": True}


class ArcFaceUserStoryTest(TestCase):
    @pytest.mark.slow
    def test_fit_save_reload_in_fresh_process(self):
        """Dense "backbone" → ArcFace in a functional model: fit one epoch, save `.keras`,
        reload in a fresh process; training logits and inference logits are identical."""
        rng = np.random.default_rng(0)
        images = rng.normal(size=(64, 32)).astype("float32")
        labels = rng.integers(0, 10, size=(64,)).astype("int64")

        inputs = keras.Input((32,), name="features")
        label_input = keras.Input((), dtype="int64", name="labels")
        embeddings = keras.layers.Dense(16, name="embedding")(inputs)
        head = ArcFace(num_classes=10, name="arcface")
        model = keras.Model([inputs, label_input], head([embeddings, label_input]))
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        history = model.fit([images, labels], labels, batch_size=16, epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))

        self.run_model_saving_test(model, [images, labels], fresh_process=True)
        inference = keras.Model(inputs, head(embeddings))
        self.run_model_saving_test(inference, images, fresh_process=True)
