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
from tfface.layers import CurricularFace
from tfface.testing import TestCase


def curricular_logits(x, w, labels, t, scale=64.0, m=0.5):
    """Huang et al. (CVPR 2020): target s·T(cos θ_y) (ArcFace with its fallback); negative
    s·N(t, cos θ_j) = s·cos θ_j·(t + cos θ_j) where cos θ_j > cos(θ_y + m), else s·cos θ_j."""
    _, table = reference.cosine_table(x, w)
    logits = np.zeros((x.shape[0], w.shape[1]))
    for i in range(x.shape[0]):
        y = None if labels is None else int(labels[i])
        boundary = None if y is None else math.cos(math.acos(table[i][y]) + m)
        for j in range(w.shape[1]):
            value = table[i][j]
            if y is not None and j == y:
                value = reference.target_value("ArcFace", value, {"margin": m})
            elif y is not None and value > boundary:
                value = value * (t + value)
            logits[i, j] = scale * value
    return logits


def t_update(x, w, labels, t, momentum=0.01):
    """t ← α·mean_i cos θ_{y_i} + (1 − α)·t."""
    _, table = reference.cosine_table(x, w)
    total = 0.0
    for i in range(x.shape[0]):
        total += table[i][int(labels[i])]
    return momentum * total / x.shape[0] + (1 - momentum) * t


class CurricularFaceTest(HeadChecks, TestCase):
    layer_cls = CurricularFace
    init_kwargs = {"num_classes": 6}

    def reference_logits(self, x, w, labels, frozen_x=None):
        return curricular_logits(x, w, labels, t=0.0)

    def test_layer_harness_training_inputs(self):
        x, _, labels = random_case()
        self.run_layer_test(
            cls=CurricularFace,
            init_kwargs=self.init_kwargs,
            input_data=[x, labels],
            expected_output_shape=(x.shape[0], 6),
            expected_output_dtype="float32",
            expected_mixed_precision_output_dtype="float32",
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=1,
        )

    def test_golden_hard_and_easy_negatives(self):
        """Embedding 0 at 60° from class 0: cos(θ_y + m) = cos(1.5471976) = 0.023597; class 1
        at 30° (cos 0.866025 > 0.023597) is hard, with t = 0.3:
        64·0.866025·(0.3 + 0.866025) = 64.6277. Embedding 1 at −80°: cos(θ_y + m) =
        cos(1.8962634) = −0.319751; class 1 at 170° (cos −0.984808 < −0.319751) is easy
        and unchanged: 64·(−0.984808) = −63.0277.
        """
        head = CurricularFace(num_classes=2)
        x = at_angles(head, [60.0, -80.0])  # class 1 (y-axis) at 30° and 170°
        head.t.assign(0.3)
        logits = keras.ops.convert_to_numpy(head([x, np.zeros(2, "int64")]))
        c30 = math.cos(deg(30))
        self.assertAllClose(logits[0], [64 * math.cos(deg(60) + 0.5), 64 * c30 * (0.3 + c30)])
        self.assertAllClose(logits[0, 1], 64.6277, atol=1e-4)
        self.assertAllClose(
            logits[1], [64 * math.cos(deg(80) + 0.5), 64 * math.cos(deg(170))], atol=1e-4
        )
        self.assertAllClose(logits[1, 1], -63.0277, atol=1e-4)

    def test_t_updates_only_on_training_calls_and_is_used_at_once(self):
        x, w, labels = random_case(1, batch=8)
        head = self.make_head(x, w)
        head([x, labels])
        head([x, labels], training=False)
        head(x, training=True)
        self.assertEqual(float(head.t.numpy()), 0.0)
        # Targets near their class so that t moves visibly: x = W_y + noise.
        x = (w[:, labels].T + 0.3 * x).astype("float32")
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        t = 0.0
        for step in range(3):
            logits = head([x, labels], training=True)
            t = t_update(x64, w64, labels, t)
            self.assertAllClose(head.t.numpy(), t, rtol=1e-5, atol=1e-7, msg=f"step {step}")
            expected = curricular_logits(x64, w64, labels, t)
            # float32 logits up to s = 64: rtol 1e-5 (torch's CPU kernels were 5.6e-6 off at
            # 55.8). The previous step's t would move hard negatives by s·cos θ_j·Δt, with
            # Δt ≈ 0.01·cos θ_y per step: far above this tolerance.
            self.assertAllClose(logits, expected, atol=2e-4, rtol=1e-5, msg=f"step {step}")
        self.assertGreater(t, 0.02)
        self.assertAllClose(
            head([x, labels]), curricular_logits(x64, w64, labels, t), atol=2e-4, rtol=1e-5
        )

    def test_t_carries_no_gradient(self):
        """The gradient of a hard negative is s·(t + 2 cos θ_j) with t held fixed: a
        training call (which updates t from the targets) has the gradient of the loop
        reference at the updated t, differentiated with t constant."""
        from tests.layers.head_test_base import _head_loss
        from tfface.testing.backend import value_and_gradients

        x, w, labels = random_case(2)
        head = self.make_head(x, w)
        head.t.assign(0.5)
        _, (grad_x, _) = value_and_gradients(
            lambda a, b: _head_loss(head, a, b, labels, training=True), x, w
        )
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        t = t_update(x64, w64, labels, 0.5)
        fd_x = reference.finite_difference(
            lambda a: reference.cross_entropy(curricular_logits(a, w64, labels, t), labels), x64
        )
        self.assertAllClose(grad_x, fd_x, atol=2e-3, rtol=2e-3)

    def test_t_survives_keras_save(self):
        x, _, labels = random_case(3, batch=12)
        embeddings = keras.Input((DIM,))
        label_input = keras.Input((), dtype="int64")
        head = CurricularFace(num_classes=6, momentum=0.5)
        model = keras.Model([embeddings, label_input], head([embeddings, label_input]))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit([x, labels], labels, batch_size=4, epochs=1, verbose=0)
        self.assertNotEqual(float(head.t.numpy()), 0.0)
        reloaded = self.run_model_saving_test(model, [x, labels])
        self.assertAllClose(reloaded.layers[-1].t.numpy(), head.t.numpy(), atol=0)

    @pytest.mark.tensorflow_only
    def test_two_replicas_equal_one_device(self):
        """Equal per-replica batches: the averaged EMA equals the EMA of the global mean."""
        import tensorflow as tf

        x, w, labels = random_case(6, batch=8)
        strategy = mirrored_strategy()
        with strategy.scope():
            head = CurricularFace(num_classes=6)
            head.build(x.shape)
            head.kernel.assign(w)
        dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8).repeat(3)

        @tf.function
        def step(batch):
            return strategy.run(lambda a, b: head([a, b], training=True), args=batch)

        for batch in strategy.experimental_distribute_dataset(dataset):
            step(batch)
        single = self.make_head(x, w)
        for _ in range(3):
            single([x, labels], training=True)
        copies = [c.numpy() for c in head.t.value.values]
        self.assertLen(copies, 2)
        self.assertAllClose(copies, [single.t.numpy()] * 2, rtol=1e-5, atol=1e-7)

    def test_rejects_bad_arguments(self):
        for kwargs, message in (
            ({"margin": -0.1}, "Received: margin=-0.1"),
            ({"margin": 2.0}, "Received: margin=2.0"),
            ({"momentum": 0.0}, "Received: momentum=0.0"),
            ({"momentum": 1.5}, "Received: momentum=1.5"),
            ({"scale": None}, "Received: scale=None"),
        ):
            with self.assertRaisesRegex(ValueError, message):
                CurricularFace(num_classes=3, **kwargs)


class CurricularFaceLateTrainingTest(HeadChecks, TestCase):
    """t = 0.8 (late training): hard negatives are weighted up, not down."""

    layer_cls = CurricularFace
    init_kwargs = {"num_classes": 6, "margin": 0.3, "scale": 30.0}
    state = {"t": 0.8}

    def reference_logits(self, x, w, labels, frozen_x=None):
        return curricular_logits(x, w, labels, t=0.8, scale=30.0, m=0.3)
