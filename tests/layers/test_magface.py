import math

import keras
import numpy as np

from tests.layers import reference
from tests.layers.golden import at_angles
from tests.layers.golden import deg
from tests.layers.head_test_base import DIM
from tests.layers.head_test_base import HeadChecks
from tests.layers.head_test_base import random_case
from tfface.layers import MagFace
from tfface.testing import TestCase
from tfface.testing.backend import value_and_gradients

OFFICIAL = {"l_a": 10.0, "u_a": 110.0, "l_m": 0.45, "u_m": 0.8, "lambda_g": 35.0}


def magnitude(norm, p):
    return min(p["u_a"], max(p["l_a"], norm))


def margin(norm, p):
    """m(a) = (u_m − l_m)/(u_a − l_a)·(a − l_a) + l_m (Meng et al., CVPR 2021)."""
    a = magnitude(norm, p)
    return (p["u_m"] - p["l_m"]) / (p["u_a"] - p["l_a"]) * (a - p["l_a"]) + p["l_m"]


def magface_logits(x, w, labels, p, scale=64.0, easy_margin=True):
    """s·cos(θ_y + m(a)) on the target (easy margin: only where cos θ_y > 0; else the
    ArcFace fallback past θ_y = π − m(a)), s·cos θ_j elsewhere."""
    norms, table = reference.cosine_table(x, w)
    logits = np.zeros((x.shape[0], w.shape[1]))
    for i in range(x.shape[0]):
        m = margin(norms[i], p)
        for j in range(w.shape[1]):
            value = table[i][j]
            if labels is not None and j == int(labels[i]):
                if easy_margin:
                    value = math.cos(math.acos(value) + m) if value > 0 else value
                else:
                    value = reference.target_value("ArcFace", value, {"margin": m})
            logits[i, j] = scale * value
    return logits


def regularizer(x, p):
    """λ_g · mean_i g(a_i), g(a) = 1/a + a/u_a²."""
    norms, _ = reference.cosine_table(x, np.eye(x.shape[1]))
    total = 0.0
    for norm in norms:
        a = magnitude(norm, p)
        total += 1.0 / a + a / p["u_a"] ** 2
    return p["lambda_g"] * total / len(norms)


# Norms of the random embeddings are ≈ 0.5–3.5: this range puts the clip on both sides.
SMALL = {"l_a": 1.0, "u_a": 3.0, "l_m": 0.2, "u_m": 0.7, "lambda_g": 2.0}
SMALL_KWARGS = {"lower_norm": 1.0, "upper_norm": 3.0, "lower_margin": 0.2, "upper_margin": 0.7}


class MagFaceTest(HeadChecks, TestCase):
    layer_cls = MagFace
    init_kwargs = {"num_classes": 6, "lambda_g": 2.0, **SMALL_KWARGS}

    def reference_logits(self, x, w, labels, frozen_x=None):
        return magface_logits(x, w, labels, SMALL)

    def test_golden_margin_and_regulariser(self):
        """Official constants. ‖x‖ = 60: m = 0.35/100·50 + 0.45 = 0.625, θ = 60°:
        64·cos(1.0471976 + 0.625) = 64·(−0.101228) = −6.4786. ‖x‖ = 200 clips to 110:
        m = 0.8, 64·cos(1.8471976) = 64·(−0.272895) = −17.4653. ‖x‖ = 2 clips to 10:
        m = 0.45, 64·cos(1.4971976) = 64·0.073532 = 4.7061. Regulariser:
        35·mean(g(60), g(110), g(10)) with g(a) = 1/a + a/110²:
        35·(0.021625 + 0.018182 + 0.100826)/3 = 1.640725.
        """
        head = MagFace(num_classes=2)
        x = at_angles(head, [60.0] * 3) * np.array([[60.0], [200.0], [2.0]], "float32")
        logits = keras.ops.convert_to_numpy(head([x, np.zeros(3, "int64")]))[:, 0]
        self.assertAllClose(
            logits, [64 * math.cos(deg(60) + m) for m in (0.625, 0.8, 0.45)], atol=1e-4
        )
        self.assertAllClose(logits, [-6.4786, -17.4653, 4.7061], atol=1e-4)
        self.assertLen(head.losses, 1)
        self.assertAllClose(head.losses[0], 1.640725, atol=1e-5)
        self.assertAllClose(head.losses[0], regularizer(x.astype(np.float64), OFFICIAL))

    def test_margin_is_linear_in_the_clipped_norm(self):
        head = MagFace(num_classes=2)
        norms = np.array([0.0, 5.0, 10.0, 35.0, 60.0, 110.0, 500.0], "float32")
        margins = keras.ops.convert_to_numpy(head.margin_for_norm(norms))
        self.assertAllClose(margins, [margin(n, OFFICIAL) for n in norms], atol=1e-6)
        self.assertAllClose(margins[[0, 2, 5, 6]], [0.45, 0.45, 0.8, 0.8], atol=1e-6)

    def test_regulariser_joins_the_loss_on_calls_with_labels(self):
        x, w, labels = random_case(1)
        head = self.make_head(x, w)
        head(x)
        self.assertLen(head.losses, 0)  # inference logits: no loss
        head([x, labels])
        self.assertLen(head.losses, 1)
        self.assertAllClose(head.losses[0], regularizer(x.astype(np.float64), SMALL), rtol=1e-5)
        self.assertAllClose(head.regularizer(x), regularizer(x.astype(np.float64), SMALL) / 2.0)
        head([x, labels])
        self.assertLen(head.losses, 1)  # replaced on every call, not accumulated

    def test_total_loss_gradient_matches_reference(self):
        """d(CE + λ_g·mean g)/dx and /dW vs finite differences of the loop reference: the
        gradient reaches ‖x‖ through m(a) and g(a)."""
        x, w, labels = random_case(2)
        head = self.make_head(x, w)

        def total(a, b):
            state = [v.value for v in head.non_trainable_variables]
            logits, _, losses = head.stateless_call([b], state, [a, labels], return_losses=True)
            ce = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            return keras.ops.mean(ce) + sum(losses)

        value, (grad_x, grad_w) = value_and_gradients(total, x, w)
        x64, w64 = x.astype(np.float64), w.astype(np.float64)

        def expected(a, b):
            return reference.cross_entropy(magface_logits(a, b, labels, SMALL), labels) + (
                regularizer(a, SMALL)
            )

        self.assertAllClose(value, expected(x64, w64), atol=1e-4)
        fd_x = reference.finite_difference(lambda a: expected(a, w64), x64)
        fd_w = reference.finite_difference(lambda b: expected(x64, b), w64)
        self.assertAllClose(grad_x, fd_x, atol=2e-3, rtol=2e-3)
        self.assertAllClose(grad_w, fd_w, atol=2e-3, rtol=2e-3)
        # Without the regulariser the norm still moves the loss through m(a).
        self.assertGreater(np.abs(np.sum(grad_x * x, axis=1)).max(), 1e-3)

    def test_fit_and_evaluate_include_the_regulariser(self):
        x, _, labels = random_case(3, batch=16)
        embeddings = keras.Input((DIM,))
        label_input = keras.Input((), dtype="int64")
        head = MagFace(num_classes=6, lambda_g=2.0, **SMALL_KWARGS)
        model = keras.Model([embeddings, label_input], head([embeddings, label_input]))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        loss = model.evaluate([x, labels], labels, batch_size=16, verbose=0)
        logits = model([x, labels])
        ce = keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )
        expected = float(ce) + regularizer(x.astype(np.float64), SMALL)
        self.assertAllClose(loss, expected, rtol=1e-5)
        self.assertGreater(regularizer(x.astype(np.float64), SMALL), 0.5)
        history = model.fit([x, labels], labels, batch_size=16, epochs=1, verbose=0)
        self.assertAllClose(history.history["loss"][0], expected, rtol=1e-5)

    def test_rejects_bad_arguments(self):
        for kwargs, message in (
            ({"lower_norm": 0.0}, "Received: lower_norm=0.0"),
            ({"upper_norm": 5.0}, "Received: upper_norm=5.0"),
            ({"lower_margin": -0.1}, "Received: lower_margin=-0.1"),
            ({"upper_margin": 0.3}, "Received: upper_margin=0.3"),
            ({"upper_margin": 2.0}, "Received: upper_margin=2.0"),
            ({"lambda_g": -1.0}, "Received: lambda_g=-1.0"),
            ({"easy_margin": 1}, "Received: easy_margin=1"),
            ({"scale": None}, "Received: scale=None"),
        ):
            with self.assertRaisesRegex(ValueError, message):
                MagFace(num_classes=3, **kwargs)


class MagFaceFallbackTest(HeadChecks, TestCase):
    """easy_margin=False: the ArcFace fallback past θ_y = π − m(a)."""

    layer_cls = MagFace
    init_kwargs = {"num_classes": 6, "easy_margin": False, **SMALL_KWARGS}

    def reference_logits(self, x, w, labels, frozen_x=None):
        return magface_logits(x, w, labels, SMALL, easy_margin=False)

    def test_golden_fallback(self):
        """‖x‖ = 110 (m = 0.8), θ = 170° > π − 0.8 = 134.2°:
        64·(cos 170° − 0.8·sin(π − 0.8)) = 64·(−0.984808 − 0.573885) = −99.7563."""
        head = MagFace(num_classes=2, easy_margin=False)
        x = at_angles(head, [170.0]) * 110.0
        expected = 64 * (math.cos(deg(170)) - 0.8 * math.sin(math.pi - 0.8))
        self.assertAllClose(head([x, np.zeros(1, "int64")])[0, 0], expected, atol=1e-3)
        self.assertAllClose(expected, -99.7563, atol=1e-4)
