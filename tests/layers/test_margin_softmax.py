import keras
import numpy as np
import pytest

from tests.layers import reference
from tests.layers.head_test_base import random_case
from tfface.layers import ArcFace
from tfface.layers import CosFace
from tfface.layers import MarginBatch
from tfface.layers import MarginSoftmax
from tfface.layers import SphereFace
from tfface.testing import TestCase
from tfface.testing.backend import value_and_gradients


class SubtractMargin(MarginSoftmax):
    """A user head written against the hook: s · (cos θ − 0.25)."""

    def apply_margin(self, cos_target, training=None):
        return cos_target - 0.25


class RecordingHead(MarginSoftmax):
    """Keeps the `MarginBatch` it receives; margin 0.1 · ‖x‖ (with gradient), negatives
    halved where training is True."""

    def margin_cosines(self, batch):
        self.seen = batch
        target = batch.cos_target - 0.1 * batch.feature_norms
        if batch.training:
            return target, 0.5 * batch.cosine
        return target, batch.cosine


class MarginSoftmaxTest(TestCase):
    def test_base_requires_the_hook(self):
        x, _, labels = random_case()
        head = MarginSoftmax(num_classes=6, scale=10.0)
        self.assertAllFinite(head(x))  # inference needs no margin
        with self.assertRaisesRegex(NotImplementedError, "apply_margin"):
            head([x, labels])

    def test_subclass_overriding_the_hook_matches_cosface(self):
        x, w, labels = random_case(1)
        custom = SubtractMargin(num_classes=6, scale=64.0)
        cosface = CosFace(num_classes=6, margin=0.25)
        for head in (custom, cosface):
            head.build(x.shape)
            head.kernel.assign(w)
        self.assertAllClose(custom([x, labels]), cosface([x, labels]), atol=1e-5)

    def test_only_the_target_logit_changes(self):
        x, w, labels = random_case(2)
        head = ArcFace(num_classes=6)
        head.build(x.shape)
        head.kernel.assign(w)
        train = keras.ops.convert_to_numpy(head([x, labels]))
        infer = keras.ops.convert_to_numpy(head(x))
        mask = np.eye(6, dtype=bool)[labels]
        self.assertAllEqual(train[~mask], infer[~mask])
        self.assertTrue(np.all(train[mask] < infer[mask]))

    def test_rejects_bad_embeddings_and_inputs(self):
        head = ArcFace(num_classes=3)
        with self.assertRaisesRegex(ValueError, r"\[batch, dim\]"):
            head(np.zeros((2, 3, 4), "float32"))
        x, _, labels = random_case()
        with self.assertRaisesRegex(ValueError, r"`\[embeddings, labels\]`"):
            ArcFace(num_classes=6)([x, labels, labels])

    def test_rejects_bad_base_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: num_classes=True"):
            MarginSoftmax(num_classes=True)
        with self.assertRaisesRegex(ValueError, "Received: scale=-1"):
            MarginSoftmax(num_classes=3, scale=-1)

    def test_kernel_initializer_and_regularizer_round_trip(self):
        head = ArcFace(
            num_classes=4,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=3),
            kernel_regularizer=keras.regularizers.L2(5e-4),
        )
        revived = self.run_serialization_test(head)
        self.assertIsInstance(revived.kernel_regularizer, keras.regularizers.L2)
        head.build((None, 8))
        self.assertEqual(tuple(head.kernel.shape), (8, 4))
        self.assertLess(float(np.abs(head.kernel.numpy()).max()), 0.1)
        head(np.ones((2, 8), "float32"))
        self.assertLen(head.losses, 1)

    def test_fit_with_xla_under_mixed_float16(self):
        """`jit_compile=True` (Keras's default on GPU) and mixed_float16 together."""
        rng = np.random.default_rng(3)
        x = rng.normal(size=(32, 8)).astype("float32")
        labels = rng.integers(0, 5, size=(32,)).astype("int64")
        keras.config.set_dtype_policy("mixed_float16")
        try:
            for cls in (ArcFace, SphereFace):
                with self.subTest(head=cls.__name__):
                    inputs = keras.Input((8,))
                    label_input = keras.Input((), dtype="int64")
                    head = cls(num_classes=5)
                    logits = head([keras.layers.Dense(8)(inputs), label_input])
                    model = keras.Model([inputs, label_input], logits)
                    model.compile(
                        optimizer="sgd",
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        # XLA on TF, jax.jit on JAX; torch.compile is not what is tested.
                        jit_compile=keras.backend.backend() != "torch",
                    )
                    history = model.fit([x, labels], labels, batch_size=8, epochs=1, verbose=0)
                    self.assertTrue(np.isfinite(history.history["loss"][0]))
                    self.assertEqual(keras.backend.standardize_dtype(logits.dtype), "float32")
                    self.assertEqual(keras.backend.standardize_dtype(head.kernel.dtype), "float32")
                    if cls is SphereFace:
                        self.assertEqual(int(head.iteration.numpy()), 4)
        finally:
            keras.config.set_dtype_policy("float32")

    @pytest.mark.tensorflow_only
    def test_build_accepts_tensor_shapes(self):
        import tensorflow as tf

        for shape in (
            tf.TensorShape([None, 8]),
            [tf.TensorShape([None, 8]), tf.TensorShape([None])],
        ):
            head = ArcFace(num_classes=3)
            head.build(shape)
            self.assertEqual(tuple(head.kernel.shape), (8, 3))


class MarginBatchHookTest(TestCase):
    """The wide hook: `margin_cosines(batch)` sees norms, all cosines, labels, training."""

    def _head(self, x, w):
        head = RecordingHead(num_classes=w.shape[1], scale=10.0)
        head.build(x.shape)
        head.kernel.assign(w)
        return head

    def test_batch_carries_what_the_modern_losses_need(self):
        x, w, labels = random_case(3)
        head = self._head(x, w)
        head([x, labels[:, None].astype("int32")], training=False)
        batch = head.seen
        self.assertIsInstance(batch, MarginBatch)
        norms, table = reference.cosine_table(x.astype("float64"), w.astype("float64"))
        self.assertAllClose(batch.feature_norms, norms, atol=1e-5)
        self.assertAllClose(batch.cosine, table, atol=1e-6)
        self.assertAllClose(batch.cos_target, [table[i][y] for i, y in enumerate(labels)], 1e-6)
        self.assertAllEqual(batch.labels, labels)  # flattened to [B]
        self.assertAllEqual(batch.is_target, np.eye(w.shape[1], dtype=bool)[labels])
        self.assertIs(batch.training, False)
        for tensor in (batch.cosine, batch.cos_target, batch.feature_norms):
            self.assertEqual(keras.backend.standardize_dtype(tensor.dtype), "float32")
        head([x, labels])
        self.assertIsNone(head.seen.training)

    def test_hook_sets_target_and_other_classes(self):
        x, w, labels = random_case(4)
        head = self._head(x, w)
        norms, table = reference.cosine_table(x.astype("float64"), w.astype("float64"))
        logits = keras.ops.convert_to_numpy(head([x, labels], training=True))
        for i, y in enumerate(labels):
            for j in range(w.shape[1]):
                expected = table[i][j] - 0.1 * norms[i] if j == y else 0.5 * table[i][j]
                self.assertAllClose(logits[i, j], 10.0 * expected, atol=1e-4)
        # No labels: inference logits, the hook is not called.
        head.seen = None
        self.assertAllClose(head(x), 10.0 * np.array(table), atol=1e-4)
        self.assertIsNone(head.seen)

    def test_gradient_reaches_the_feature_norms(self):
        """The target depends on ‖x‖ here, so dL/dx has a radial part (finite differences
        of the loop formula); heads that must not, use `stop_gradient` (AdaFace)."""
        x, w, labels = random_case(5)
        head = self._head(x, w)

        def loss(a):
            logits = head([a, labels])
            return keras.ops.mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )

        def expected_loss(a):
            norms, table = reference.cosine_table(a, w.astype("float64"))
            logits = 10.0 * np.array(table)
            for i, y in enumerate(labels):
                logits[i, y] = 10.0 * (table[i][y] - 0.1 * norms[i])
            return reference.cross_entropy(logits, labels)

        _, (grad,) = value_and_gradients(loss, x)
        fd = reference.finite_difference(expected_loss, x.astype("float64"))
        self.assertAllClose(grad, fd, atol=2e-3, rtol=2e-3)
        self.assertGreater(np.abs(np.sum(grad * x, axis=1)).max(), 1e-3)

    def test_default_hook_is_apply_margin(self):
        """A head that overrides only `apply_margin` goes through the default
        `margin_cosines`, which leaves the other classes untouched."""
        x, w, labels = random_case(6)
        head = SubtractMargin(num_classes=6, scale=8.0)
        head.build(x.shape)
        head.kernel.assign(w)
        batch_target, batch_cosine = head.margin_cosines(
            MarginBatch(
                cosine=np.ones((2, 3), "float32"),
                cos_target=np.array([0.5, -0.5], "float32"),
                labels=np.array([0, 1]),
                is_target=np.eye(3, dtype=bool)[:2],
                feature_norms=np.ones(2, "float32"),
            )
        )
        self.assertAllClose(batch_target, [0.25, -0.75])
        self.assertAllClose(batch_cosine, np.ones((2, 3)))

    def test_sub_centres_need_normalised_weights(self):
        class Bad(MarginSoftmax):
            normalize_weights = False
            centers_per_class = 2

        with self.assertRaisesRegex(ValueError, "centers_per_class=2, normalize_weights=False"):
            Bad(num_classes=3).build((None, 4))
