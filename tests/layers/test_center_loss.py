import keras
import numpy as np
import pytest

from tests.layers import reference
from tests.layers.distribute import mirrored_strategy
from tfface.layers import CenterLoss
from tfface.testing import TestCase
from tfface.testing.backend import value_and_gradients

CLASSES, DIM = 7, 5


def batches(seed, steps, batch=8, classes=CLASSES, dim=DIM):
    """`steps` (features, labels) batches with repeated labels and absent classes."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        features = rng.normal(size=(batch, dim)).astype("float32")
        labels = rng.integers(0, classes - 2, size=(batch,)).astype("int64")
        out.append((features, labels))
    return out


class CenterLossTest(TestCase):
    def test_layer_harness(self):
        features, labels = batches(0, 1)[0]
        self.run_layer_test(
            cls=CenterLoss,
            init_kwargs={"num_classes": CLASSES, "alpha": 0.5},
            input_data=[features, labels],
            expected_output_shape=(),
            expected_output_dtype="float32",
            expected_mixed_precision_output_dtype="float32",
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=1,
            # Centers are not trained by the optimizer: there is nothing to fit.
            run_training_check=False,
        )

    def test_serialization(self):
        self.run_serialization_test(CenterLoss(num_classes=CLASSES, alpha=0.25))

    def _model(self, layer):
        features = keras.Input((DIM,))
        labels = keras.Input((), dtype="int64")
        return keras.Model([features, labels], layer([features, labels]))

    def test_saving_in_process_keeps_centers(self):
        layer = CenterLoss(num_classes=CLASSES)
        model = self._model(layer)
        for features, labels in batches(1, 3):
            layer([features, labels], training=True)
        features, labels = batches(2, 1)[0]
        reloaded = self.run_model_saving_test(model, [features, labels])
        self.assertAllClose(reloaded.layers[-1].centers.numpy(), layer.centers.numpy(), atol=0)

    @pytest.mark.slow
    def test_saving_fresh_process(self):
        layer = CenterLoss(num_classes=CLASSES)
        model = self._model(layer)
        for features, labels in batches(1, 2):
            layer([features, labels], training=True)
        features, labels = batches(2, 1)[0]
        self.run_model_saving_test(model, [features, labels], fresh_process=True)

    def test_matches_loop_reference_over_steps(self):
        """Loss before each update and centers after it, for 5 steps, vs the paper's rule."""
        for alpha in (0.5, 0.2, 1.0):
            layer = CenterLoss(num_classes=CLASSES, alpha=alpha)
            centers = np.zeros((CLASSES, DIM))
            for step, (features, labels) in enumerate(batches(3, 5)):
                loss = layer([features, labels], training=True)
                expected_loss = reference.center_loss_value(features, labels, centers)
                centers = reference.center_update(features, labels, centers, alpha)
                msg = f"alpha={alpha} step={step}"
                self.assertAllClose(loss, expected_loss, atol=1e-5, rtol=1e-5, msg=msg)
                self.assertAllClose(layer.centers.numpy(), centers, atol=1e-6, msg=msg)

    def test_golden_single_step(self):
        """Class 0 gets x = (2, 0) and (4, 0) with c_0 = 0: Δc_0 = ((0−2) + (0−4)) / (1 + 2)
        = −2, so with α = 0.5, c_0 = 0 − 0.5 · (−2) = (1, 0). Loss before the update:
        ½ · mean(4, 16) = 5. Class 1 is absent and stays 0."""
        layer = CenterLoss(num_classes=2, alpha=0.5)
        loss = layer(
            [np.array([[2.0, 0.0], [4.0, 0.0]], "float32"), np.array([0, 0])], training=True
        )
        self.assertAllClose(loss, 5.0, atol=1e-6)
        self.assertAllClose(layer.centers.numpy(), np.array([[1.0, 0.0], [0.0, 0.0]]), atol=1e-6)

    def test_no_update_outside_training(self):
        layer = CenterLoss(num_classes=CLASSES)
        features, labels = batches(4, 1)[0]
        layer([features, labels])
        layer([features, labels], training=False)
        self.assertAllClose(layer.centers.numpy(), np.zeros((CLASSES, DIM)), atol=0)

    def test_gradient_flows_to_features_only(self):
        layer = CenterLoss(num_classes=CLASSES)
        layer([*batches(5, 1)[0]], training=True)  # non-zero centers
        features, labels = batches(6, 1)[0]
        centers = layer.centers.numpy()

        def loss_fn(x, c):
            loss, _ = layer.stateless_call([], [c], [x, labels], training=False)
            return loss

        _, (grad_x, grad_c) = value_and_gradients(loss_fn, features, centers)
        self.assertAllEqual(grad_c, np.zeros_like(centers))
        self.assertEqual(layer.trainable_weights, [])
        self.assertAllClose(grad_x, (features - centers[labels]) / len(labels), atol=1e-6)

    def test_untouched_rows_stay_exact_with_many_classes(self):
        """C = 50,000: only the rows of the batch's labels change (sparse row update)."""
        classes = 50_000
        layer = CenterLoss(num_classes=classes, alpha=0.5)
        layer.build([(None, DIM), (None,)])
        initial = np.random.default_rng(7).normal(size=(classes, DIM)).astype("float32")
        layer.centers.assign(initial)
        features = np.random.default_rng(8).normal(size=(6, DIM)).astype("float32")
        labels = np.array([49_999, 3, 3, 12_345, 0, 49_999])
        layer([features, labels], training=True)
        after = layer.centers.numpy()
        touched = np.unique(labels)
        untouched = np.setdiff1d(np.arange(classes), touched)
        self.assertAllEqual(after[untouched], initial[untouched])
        expected = reference.center_update(features, labels, initial, 0.5)
        self.assertAllClose(after[touched], expected[touched], atol=1e-6)

    def test_label_shapes_and_dtypes(self):
        features, labels = batches(9, 1)[0]
        expected = CenterLoss(num_classes=CLASSES)
        expected([features, labels], training=True)
        for variant in (labels.astype("int32"), labels[:, None]):
            layer = CenterLoss(num_classes=CLASSES)
            layer([features, variant], training=True)
            self.assertAllClose(layer.centers.numpy(), expected.centers.numpy(), atol=0)

    def test_mixed_float16(self):
        features, labels = batches(10, 1)[0]
        expected_layer = CenterLoss(num_classes=CLASSES)
        expected = expected_layer([features, labels], training=True)
        keras.config.set_dtype_policy("mixed_float16")
        try:
            layer = CenterLoss(num_classes=CLASSES)
            loss = layer([features, labels], training=True)
        finally:
            keras.config.set_dtype_policy("float32")
        self.assertEqual(keras.backend.standardize_dtype(loss.dtype), "float32")
        self.assertEqual(keras.backend.standardize_dtype(layer.centers.dtype), "float32")
        self.assertAllClose(loss, expected, atol=1e-6)
        self.assertAllClose(layer.centers.numpy(), expected_layer.centers.numpy(), atol=1e-6)

    @pytest.mark.tensorflow_only
    def test_build_accepts_tensor_shapes(self):
        import tensorflow as tf

        layer = CenterLoss(num_classes=CLASSES)
        layer.build([tf.TensorShape([None, DIM]), tf.TensorShape([None])])
        self.assertEqual(tuple(layer.centers.shape), (CLASSES, DIM))

    def test_rejects_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, "Received: num_classes=0"):
            CenterLoss(num_classes=0)
        with self.assertRaisesRegex(ValueError, "Received: alpha=1.5"):
            CenterLoss(num_classes=3, alpha=1.5)
        features, labels = batches(11, 1)[0]
        with self.assertRaisesRegex(ValueError, "integer class labels"):
            CenterLoss(num_classes=CLASSES)([features, labels.astype("float32")])
        with self.assertRaisesRegex(ValueError, r"\[features, labels\]"):
            CenterLoss(num_classes=CLASSES)(features)


class CenterLossDistributedTest(TestCase):
    def _run_mirrored(self, steps, split, alpha):
        """Runs `steps` training calls on 2 replicas; replica 0 gets the first `split` rows."""
        import tensorflow as tf

        strategy = mirrored_strategy()
        with strategy.scope():
            layer = CenterLoss(num_classes=CLASSES, alpha=alpha)
            layer.build([(None, DIM), (None,)])

        @tf.function
        def step(features, labels):
            return strategy.run(lambda f, y: layer([f, y], training=True), args=(features, labels))

        for features, labels in steps:

            def per_replica(ctx, array=None):
                rows = slice(0, split) if ctx.replica_id_in_sync_group == 0 else slice(split, None)
                return tf.constant(array[rows])

            f = strategy.experimental_distribute_values_from_function(
                lambda ctx, a=features: per_replica(ctx, a)
            )
            y = strategy.experimental_distribute_values_from_function(
                lambda ctx, a=labels: per_replica(ctx, a)
            )
            step(f, y)
        copies = [v.numpy() for v in layer.centers.value.values]
        self.assertLen(copies, 2)
        self.assertAllEqual(copies[1], copies[0])  # the mirrored copies stay in sync
        return copies[0]

    def _run_single(self, steps, alpha):
        layer = CenterLoss(num_classes=CLASSES, alpha=alpha)
        for features, labels in steps:
            layer([features, labels], training=True)
        return layer.centers.numpy()

    @pytest.mark.tensorflow_only
    def test_two_replicas_equal_one_device(self):
        steps = batches(12, 6, batch=8)
        for split in (4, 3):  # equal and unequal per-replica batches
            with self.subTest(split=split):
                single = self._run_single(steps, alpha=0.5)
                mirrored = self._run_mirrored(steps, split, alpha=0.5)
                self.assertAllClose(mirrored, single, atol=1e-6, rtol=0)
                centers = np.zeros((CLASSES, DIM))
                for features, labels in steps:
                    centers = reference.center_update(features, labels, centers, 0.5)
                self.assertAllClose(mirrored, centers, atol=1e-5)

    @pytest.mark.tensorflow_only
    def test_cross_replica_context_call(self):
        """Called eagerly inside `strategy.scope()` (cross-replica context): a plain update
        on the whole batch, written to every mirrored copy."""
        features, labels = batches(15, 1)[0]
        strategy = mirrored_strategy()
        with strategy.scope():
            layer = CenterLoss(num_classes=CLASSES)
            layer([features, labels], training=True)
        expected = reference.center_update(features, labels, np.zeros((CLASSES, DIM)), 0.5)
        for copy in layer.centers.value.values:
            self.assertAllClose(copy.numpy(), expected, atol=1e-6)

    def test_replica_local_update_would_differ(self):
        """Guard that the test above can fail: per-replica updates without the all-reduce
        (each replica applying its own half-batch rule) give different centers."""
        steps = batches(12, 6, batch=8)
        single = self._run_single(steps, alpha=0.5)
        centers = np.zeros((CLASSES, DIM))
        for features, labels in steps:
            first = reference.center_update(features[:4], labels[:4], centers, 0.5)
            centers = reference.center_update(features[4:], labels[4:], first, 0.5)
        self.assertGreater(np.abs(centers - single).max(), 1e-3)

    @pytest.mark.tensorflow_only
    def test_fit_under_mirrored_strategy(self):
        """`model.fit` under MirroredStrategy runs the update in replica context."""
        features, labels = batches(13, 1, batch=16)[0]
        strategy = mirrored_strategy()
        with strategy.scope():
            x = keras.Input((DIM,))
            y = keras.Input((), dtype="int64")
            layer = CenterLoss(num_classes=CLASSES)
            model = keras.Model([x, y], layer([x, y]))
            model.compile(loss=lambda y_true, y_pred: y_pred + 0.0 * y_true)
        model.fit(
            [features, labels],
            np.zeros(16, "float32"),
            batch_size=16,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        single = self._run_single([(features, labels)], alpha=0.5)
        self.assertAllClose(layer.centers.numpy(), single, atol=1e-6)

    def test_fit_with_xla_matches_loop_reference(self):
        """`model.fit(jit_compile=True)` on a features → CenterLoss model: the centers follow
        the paper's rule batch by batch (nothing trainable, so features stay fixed)."""
        features, labels = batches(14, 1, batch=24)[0]
        x = keras.Input((DIM,))
        y = keras.Input((), dtype="int64")
        layer = CenterLoss(num_classes=CLASSES, alpha=0.5)
        model = keras.Model([x, y], layer([x, y]))
        # jit_compile: XLA on TensorFlow, jax.jit on JAX; torch.compile is not asked for.
        jit = keras.backend.backend() != "torch"
        model.compile(loss=lambda y_true, y_pred: y_pred + 0.0 * y_true, jit_compile=jit)
        model.fit(
            [features, labels], np.zeros(24, "float32"), batch_size=8, shuffle=False, verbose=0
        )
        centers = np.zeros((CLASSES, DIM))
        for start in range(0, 24, 8):
            rows = slice(start, start + 8)
            centers = reference.center_update(features[rows], labels[rows], centers, 0.5)
        self.assertAllClose(layer.centers.numpy(), centers, atol=1e-6)
