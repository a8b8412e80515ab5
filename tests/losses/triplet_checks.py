"""The checks every triplet loss passes, shared by the semi-hard, hard and batch-all tests.

A test class mixes `TripletLossChecks` into `TestCase` and names its plain function, its
Loss class, its loop reference and whether it has the `soft` option; the golden values
stay in each loss's own file.
"""

import functools

import keras
import numpy as np
import pytest

from tests.losses import reference
from tests.losses import utils
from tfface.testing.backend import compiled


class TripletLossChecks:
    loss_fn = None  # the plain function, e.g. triplet_hard_loss
    loss_cls = None  # its Loss class
    reference_fn = None  # the loop reference in tests/losses/reference.py
    has_soft = False  # whether the loss takes soft=True
    reference_seeds = (0, 1)
    reference_sizes = (6, 11)

    def soft_options(self):
        return (False, True) if self.has_soft else (False,)

    def kwargs(self, soft):
        return {"soft": soft} if self.has_soft else {}

    def test_matches_loop_reference(self):
        for soft in self.soft_options():
            utils.check_against_reference(
                self,
                type(self).loss_fn,
                type(self).reference_fn,
                {"margin": 0.5, **self.kwargs(soft)},
                {"margin": 0.5, **self.kwargs(soft)},
                seeds=self.reference_seeds,
                sizes=self.reference_sizes,
            )

    def test_no_positive_pair_gives_zero_and_finite_gradient(self):
        labels, emb = reference.random_batch(0, 6, 4, "no_positive")
        for soft in self.soft_options():
            value, grad = utils.value_and_grad(type(self).loss_fn, labels, emb, **self.kwargs(soft))
            self.assertEqual(value, 0.0)
            self.assertAllEqual(grad, np.zeros_like(emb))

    def test_float16_and_graph_mode(self):
        """float16 embeddings are mined in float32, eagerly and in a compiled function."""
        labels, emb = reference.random_batch(6, 16, 8, "mixed")
        emb16 = emb.astype("float16")
        for soft in self.soft_options():
            fn = functools.partial(type(self).loss_fn, margin=0.5, **self.kwargs(soft))
            expected = type(self).reference_fn(
                labels, emb16.astype("float32"), 0.5, **self.kwargs(soft)
            )
            for call in (fn, compiled(fn)):
                loss = call(labels[:, None].astype("int64"), emb16)
                self.assertEqual(keras.backend.standardize_dtype(loss.dtype), "float32")
                self.assertAllClose(loss, expected, atol=1e-5)

    def test_label_shapes_and_dtypes(self):
        """int32/int64, [B] or [B, 1], and the float32 labels Keras gives a compiled loss
        function: one value. float16 labels (exact only below 2048) are refused."""
        labels, emb = reference.random_batch(4, 10, 4, "mixed")
        expected = type(self).loss_fn(labels, emb)
        for y in (
            labels.astype("int64"),
            labels[:, None],
            labels.astype("float32"),
            labels[:, None].astype("float64"),
        ):
            with self.subTest(dtype=y.dtype, shape=y.shape):
                self.assertAllClose(type(self).loss_fn(y, emb), expected)
        with self.assertRaisesRegex(ValueError, "labels.dtype=float16"):
            type(self).loss_fn(labels.astype("float16"), emb)

    def test_invalid_arguments(self):
        labels, emb = reference.random_batch(0, 4, 2, "mixed")
        fn = type(self).loss_fn
        with self.assertRaisesRegex(ValueError, "distance_metric='cosine'"):
            fn(labels, emb, distance_metric="cosine")
        with self.assertRaisesRegex(ValueError, "margin=-1"):
            fn(labels, emb, margin=-1)
        with self.assertRaisesRegex(ValueError, r"\[batch\] or \[batch, 1\]"):
            fn(np.stack([labels, labels], axis=1), emb)
        with self.assertRaisesRegex(ValueError, "same batch size"):
            fn(labels[:3], emb)
        with self.assertRaisesRegex(ValueError, r"\[batch, dim\]"):
            fn(labels, emb[:, :, None])
        with self.assertRaisesRegex(ValueError, "distance_metric='L1'"):
            type(self).loss_cls(distance_metric="L1")

    def test_serialization_and_class(self):
        for soft in self.soft_options():
            kwargs = {"margin": 0.3, "distance_metric": "squared-L2", **self.kwargs(soft)}
            revived = self.run_serialization_test(type(self).loss_cls(**kwargs))
            self.assertEqual(revived.margin, 0.3)
            labels, emb = reference.random_batch(2, 10, 4, "mixed")
            self.assertAllClose(revived(labels, emb), type(self).loss_fn(labels, emb, **kwargs))
            with self.assertRaisesRegex(ValueError, "sample_weight"):
                revived(labels, emb, sample_weight=np.ones(10))

    def test_reduction_and_dtype_are_honoured_or_rejected(self):
        """The loss is one scalar per batch: scalar reductions give it, per-sample ones are
        refused; `dtype` is the dtype of the returned loss and survives serialization."""
        labels, emb = reference.random_batch(3, 10, 4, "mixed")
        expected = type(self).loss_fn(labels, emb)
        for reduction in ("sum_over_batch_size", "mean", "sum"):
            loss = type(self).loss_cls(reduction=reduction)
            self.assertAllClose(loss(labels, emb), expected, atol=1e-6)
        for reduction in (None, "none", "mean_with_sample_weight"):
            with self.assertRaisesRegex(ValueError, f"reduction={reduction!r}"):
                type(self).loss_cls(reduction=reduction)
        for dtype, out in (("float16", "float16"), ("mixed_bfloat16", "bfloat16")):
            loss = type(self).loss_cls(dtype=dtype)
            value = loss(labels, emb)
            self.assertEqual(keras.backend.standardize_dtype(value.dtype), out)
            self.assertAllClose(keras.ops.cast(value, "float32"), expected, atol=1e-2, rtol=1e-2)
            revived = self.run_serialization_test(loss)
            self.assertEqual(revived.dtype, out)
        with self.assertRaisesRegex(ValueError, "dtype='int32'"):
            type(self).loss_cls(dtype="int32")

    def test_compile_fit_save_reload(self):
        """As a Loss object and as the plain function: fit, save `.keras`, reload the same
        loss without custom_objects (the fresh-process reload is tests/test_public_api.py)."""
        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 6)).astype("float32")
        y = np.repeat(np.arange(8), 4).astype("int32")
        for loss in (type(self).loss_cls(margin=0.5), type(self).loss_fn):
            with self.subTest(loss=loss):
                model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
                model.compile(optimizer="sgd", loss=loss)
                history = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
                self.assertTrue(np.isfinite(history.history["loss"][0]))
                self.assertGreater(history.history["loss"][0], 0.0)
                path = f"{self.get_temp_dir()}/model.keras"
                model.save(path)
                reloaded = keras.saving.load_model(path)  # no custom_objects
                if loss is type(self).loss_fn:
                    self.assertIs(reloaded.loss, type(self).loss_fn)
                else:
                    self.assertIsInstance(reloaded.loss, type(self).loss_cls)
                    self.assertEqual(reloaded.loss.get_config(), loss.get_config())

    @pytest.mark.tensorflow_only
    def test_memory_is_quadratic(self):
        """No tensor in the traced forward+backward graph exceeds 4·B² elements at B=512."""
        for soft in self.soft_options():
            fn = functools.partial(type(self).loss_fn, **self.kwargs(soft))
            largest, unknown = utils.max_intermediate_elements(fn, 512, 16)
            self.assertLessEqual(largest, 4 * 512 * 512)
            self.assertEqual(unknown, 0)
