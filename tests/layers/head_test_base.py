"""Checks every margin head must pass; each tests/layers/test_<head>.py mixes this in."""

import keras
import numpy as np
import pytest

from tests.layers import reference
from tfface.testing.backend import value_and_gradients

BATCH, DIM, CLASSES = 5, 4, 6


def random_case(seed=0, batch=BATCH, dim=DIM, classes=CLASSES, columns=None):
    """(x [B, D], w [D, columns or C], labels [B] in [0, C)); `columns` for sub-centre heads."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, dim)).astype("float32")
    w = rng.normal(size=(dim, columns or classes)).astype("float32")
    labels = rng.integers(0, classes, size=(batch,)).astype("int64")
    return x, w, labels


class HeadChecks:
    """Mixin for `tfface.testing.TestCase` subclasses; set the class attributes below."""

    layer_cls = None
    init_kwargs = {}
    # Parameters for `reference.target_value` (scale, margin, lambda, ...).
    reference_params = {}
    # Iteration count to load into λ-annealed heads before comparing with the reference.
    iteration = None
    # Other non-trainable state to load before comparing (e.g. {"t": 0.4}).
    state = {}
    # Kernel columns per class (sub-centre heads).
    centers_per_class = 1

    def make_head(self, x=None, w=None, **overrides):
        head = self.layer_cls(**{**self.init_kwargs, **overrides})
        head.build((None, DIM if x is None else x.shape[1]))
        if w is not None:
            head.kernel.assign(w)
        if self.iteration is not None:
            head.iteration.assign(self.iteration)
        for name, value in self.state.items():
            getattr(head, name).assign(value)
        return head

    def random_case(self, seed=0, batch=BATCH):
        columns = CLASSES * self.centers_per_class if self.centers_per_class > 1 else None
        return random_case(seed, batch=batch, columns=columns)

    def reference_logits(self, x, w, labels, frozen_x=None):
        """Loop-reference logits (float64) of the head `make_head` builds; `labels=None` gives
        inference logits. `frozen_x`: embeddings whose norms the head reads without gradient
        (AdaFace's margin), so finite differences in `x` hold them fixed; None: `x`."""
        name = self.layer_cls.__name__
        return reference.head_logits(name, x, w, labels, self.reference_params)

    # --- harness -----------------------------------------------------------------
    def test_layer_harness_training_inputs(self):
        x, _, labels = self.random_case()
        self.run_layer_test(
            cls=self.layer_cls,
            init_kwargs=self.init_kwargs,
            input_data=[x, labels],
            expected_output_shape=(BATCH, self.init_kwargs["num_classes"]),
            expected_output_dtype="float32",
            expected_mixed_precision_output_dtype="float32",
            expected_num_trainable_weights=1,
        )

    def test_layer_harness_inference_input(self):
        x, _, _ = self.random_case()
        self.run_layer_test(
            cls=self.layer_cls,
            init_kwargs=self.init_kwargs,
            input_data=x,
            expected_output_shape=(BATCH, self.init_kwargs["num_classes"]),
            expected_output_dtype="float32",
            expected_mixed_precision_output_dtype="float32",
        )

    def test_serialization(self):
        self.run_serialization_test(self.layer_cls(**self.init_kwargs))

    def test_saving_in_process(self):
        x, _, labels = self.random_case()
        model = _functional(self.layer_cls(**self.init_kwargs))
        self.run_model_saving_test(model, [x, labels])

    @pytest.mark.slow
    def test_saving_fresh_process(self):
        x, _, labels = self.random_case()
        model = _functional(self.layer_cls(**self.init_kwargs))
        self.run_model_saving_test(model, [x, labels], fresh_process=True)

    # --- loop reference ----------------------------------------------------------
    def test_matches_loop_reference(self):
        """Logits, cross-entropy and gradients w.r.t. embeddings and W vs loop reference."""
        for seed in range(3):
            x, w, labels = self.random_case(seed)
            head = self.make_head(x, w)
            x64, w64 = x.astype(np.float64), w.astype(np.float64)

            expected = self.reference_logits(x64, w64, labels)
            self.assertAllClose(head([x, labels]), expected, atol=2e-4, rtol=1e-5)
            expected_inference = self.reference_logits(x64, w64, None)
            self.assertAllClose(head(x), expected_inference, atol=2e-4, rtol=1e-5)

            loss, (grad_x, grad_w) = value_and_gradients(
                lambda a, b, head=head, y=labels: _head_loss(head, a, b, y), x, w
            )
            expected_loss = reference.cross_entropy(expected, labels)
            self.assertAllClose(loss, expected_loss, atol=1e-4, rtol=1e-5)
            fd_x = reference.finite_difference(
                lambda a, w=w64, y=labels, x=x64: reference.cross_entropy(
                    self.reference_logits(a, w, y, frozen_x=x), y
                ),
                x64,
            )
            fd_w = reference.finite_difference(
                lambda a, x=x64, y=labels: reference.cross_entropy(
                    self.reference_logits(x, a, y), y
                ),
                w64,
            )
            self.assertAllClose(grad_x, fd_x, atol=2e-3, rtol=2e-3, msg=f"seed={seed} dL/dx")
            self.assertAllClose(grad_w, fd_w, atol=2e-3, rtol=2e-3, msg=f"seed={seed} dL/dW")

    # --- numerics ----------------------------------------------------------------
    def _edge_case(self):
        """Embeddings at cos θ = 1 and −1 with their target class and with a non-target."""
        _, w, _ = self.random_case(7)
        x = np.stack([w[:, 0], -w[:, 1], 3.0 * w[:, 2], -w[:, 3]]).astype("float32")
        labels = np.array([0, 1, 0, 2], dtype="int64")
        return x, w, labels

    def _check_finite_gradients(self, x, w, labels, policy):
        keras.config.set_dtype_policy(policy)
        try:
            head = self.make_head(x, w)
            logits = head([x, labels], training=True)
            loss, grads = value_and_gradients(
                lambda a, b: _head_loss(head, a, b, labels, training=True), x, w
            )
        finally:
            keras.config.set_dtype_policy("float32")
        self.assertEqual(keras.backend.standardize_dtype(logits.dtype), "float32")
        self.assertAllFinite(logits, msg=f"{policy} logits")
        self.assertAllFinite(loss, msg=f"{policy} loss")
        self.assertAllFinite(grads, msg=f"{policy} gradients")

    def test_finite_gradients_at_cos_plus_minus_one(self):
        x, w, labels = self._edge_case()
        for policy in ("float32", "mixed_float16"):
            with self.subTest(policy=policy):
                self._check_finite_gradients(x, w, labels, policy)

    def test_finite_gradients_past_pi_minus_margin(self):
        """Targets at θ = 170° (θ + m > π for every margin used here)."""
        theta = np.deg2rad(170.0)
        w = np.eye(DIM, CLASSES * self.centers_per_class, dtype="float32")
        x = np.zeros((2, DIM), "float32")
        x[:, 0], x[:, 1] = np.cos(theta), np.sin(theta)
        x[1] *= 20.0
        labels = np.array([0, 0], dtype="int64")
        for policy in ("float32", "mixed_float16"):
            with self.subTest(policy=policy):
                self._check_finite_gradients(x, w, labels, policy)

    def test_mixed_float16_matches_float32(self):
        x, w, labels = self.random_case(3)
        expected = self.make_head(x, w)([x, labels])
        keras.config.set_dtype_policy("mixed_float16")
        try:
            head = self.make_head(x, w)
            self.assertEqual(head.compute_dtype, "float16")
            self.assertEqual(keras.backend.standardize_dtype(head.kernel.dtype), "float32")
            actual = head([x.astype("float16"), labels])
            actual_inference = head(x)
        finally:
            keras.config.set_dtype_policy("float32")
        self.assertEqual(keras.backend.standardize_dtype(actual.dtype), "float32")
        self.assertEqual(keras.backend.standardize_dtype(actual_inference.dtype), "float32")
        # Only the float16 rounding of the embeddings differs.
        self.assertAllClose(actual, expected, atol=0.1, rtol=1e-2)
        self.assertAllFinite(actual)

    # --- inputs ------------------------------------------------------------------
    def test_label_shapes_and_dtypes_agree(self):
        x, w, labels = self.random_case(4)
        head = self.make_head(x, w)
        expected = head([x, labels])
        for variant in (labels.astype("int32"), labels[:, None], labels[:, None].astype("int32")):
            self.assertAllClose(head([x, variant]), expected, atol=0, rtol=0)

    def test_rejects_float_labels(self):
        x, w, labels = self.random_case()
        head = self.make_head(x, w)
        with self.assertRaisesRegex(ValueError, "integer class labels"):
            head([x, labels.astype("float32")])

    def test_rejects_bad_label_shape(self):
        x, w, _ = self.random_case()
        head = self.make_head(x, w)
        with self.assertRaisesRegex(ValueError, r"\[batch\] or \[batch, 1\]"):
            head([x, np.zeros((BATCH, 2), "int64")])

    def test_rejects_non_positive_num_classes(self):
        kwargs = {**self.init_kwargs, "num_classes": 0}
        with self.assertRaisesRegex(ValueError, "Received: num_classes=0"):
            self.layer_cls(**kwargs)

    def test_functional_fit_reduces_loss(self):
        x, _, labels = self.random_case(5, batch=32)
        head = self.layer_cls(**self.init_kwargs)
        model = _functional(head)
        model.compile(
            optimizer=keras.optimizers.SGD(0.05),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        history = model.fit([x, labels], labels, batch_size=32, epochs=5, verbose=0)
        losses = history.history["loss"]
        self.assertTrue(np.all(np.isfinite(losses)), losses)
        self.assertLess(losses[-1], losses[0])


def _head_loss(head, x, w, labels, training=False):
    """Mean cross-entropy of `head` with its kernel set to `w` (differentiable in x and w)."""
    state = [v.value for v in head.non_trainable_variables]
    logits, _ = head.stateless_call([w], state, [x, labels], training=training)
    return keras.ops.mean(
        keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    )


def _functional(head):
    embeddings = keras.Input(shape=(DIM,), name="embeddings")
    labels = keras.Input(shape=(), dtype="int64", name="labels")
    return keras.Model([embeddings, labels], head([embeddings, labels]))
