"""One TestCase for every tfface layer, loss and backbone (after keras-hub's test_case.py).

`run_layer_test` builds and calls a layer eagerly and symbolically, runs one `fit` step,
round-trips its config and, unless told not to, runs it under `mixed_float16`.
`run_serialization_test` compares config JSON after `get_config`/`from_config` and after
`serialize_keras_object`/`deserialize_keras_object`. `run_model_saving_test` saves a
`.keras` file and reloads it, in this process and, with `fresh_process=True`, in a new
Python process that imports only `tfface`, `keras` and `numpy`, and asserts identical
outputs.
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

import keras
import numpy as np
from keras import tree


def _to_numpy(x):
    return tree.map_structure(lambda t: keras.ops.convert_to_numpy(t), x)


def _symbolic_like(x):
    if isinstance(x, (list, tuple)):
        return [_symbolic_like(t) for t in x]
    x = np.asarray(x)
    return keras.Input(shape=x.shape[1:], batch_size=None, dtype=str(x.dtype))


class TestCase(unittest.TestCase):
    """unittest.TestCase with numpy asserts and the keras-hub style harness methods."""

    def setUp(self):
        super().setUp()
        keras.config.set_dtype_policy("float32")
        keras.utils.set_random_seed(1337)

    def tearDown(self):
        keras.config.set_dtype_policy("float32")
        super().tearDown()

    def get_temp_dir(self):
        d = tempfile.mkdtemp(prefix="tfface_test_")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        return d

    # --- numpy asserts -------------------------------------------------------------
    def assertAllClose(self, actual, expected, atol=1e-6, rtol=1e-6, msg=None):
        # A plain list/tuple of numbers is one array, not a structure of scalars.
        if isinstance(expected, (list, tuple)) and not isinstance(actual, (list, tuple)):
            expected = np.asarray(expected)
        tree.map_structure(
            lambda a, e: np.testing.assert_allclose(
                np.asarray(_to_numpy(a), dtype=np.float64),
                np.asarray(_to_numpy(e), dtype=np.float64),
                atol=atol,
                rtol=rtol,
                err_msg=msg or "",
            ),
            actual,
            expected,
        )

    def assertAllEqual(self, actual, expected, msg=None):
        np.testing.assert_array_equal(_to_numpy(actual), _to_numpy(expected), err_msg=msg or "")

    def assertAllFinite(self, x, msg=None):
        for t in tree.flatten(_to_numpy(x)):
            self.assertTrue(np.all(np.isfinite(t)), msg or f"non-finite values: {t}")

    # --- harness -------------------------------------------------------------------
    def run_serialization_test(self, instance):
        """get_config/from_config and serialize/deserialize both reproduce the config."""
        cls = instance.__class__
        config = instance.get_config()
        config_json = json.dumps(config, sort_keys=True, default=str)
        revived = cls.from_config(config)
        self.assertEqual(config_json, json.dumps(revived.get_config(), sort_keys=True, default=str))
        serialized = keras.saving.serialize_keras_object(instance)
        revived = keras.saving.deserialize_keras_object(serialized)
        self.assertIs(revived.__class__, cls)
        self.assertEqual(
            json.dumps(serialized, sort_keys=True, default=str),
            json.dumps(keras.saving.serialize_keras_object(revived), sort_keys=True, default=str),
        )
        return revived

    def run_layer_test(
        self,
        cls,
        init_kwargs,
        input_data,
        expected_output_shape=None,
        expected_num_trainable_weights=None,
        expected_num_non_trainable_weights=None,
        run_training_check=True,
        run_precision_check=True,
        expected_output_dtype=None,
        expected_mixed_precision_output_dtype=None,
    ):
        """Builds and calls `cls(**init_kwargs)` on `input_data` in every way a user would."""
        layer = cls(**init_kwargs)
        self.run_serialization_test(layer)

        # Eager call builds the weights.
        output = layer(input_data)
        if expected_output_shape is not None:
            self.assertEqual(tuple(output.shape), tuple(expected_output_shape))
        if expected_output_dtype is not None:
            self.assertEqual(keras.backend.standardize_dtype(output.dtype), expected_output_dtype)
        self.assertAllFinite(output)
        if expected_num_trainable_weights is not None:
            self.assertLen(layer.trainable_weights, expected_num_trainable_weights)
        if expected_num_non_trainable_weights is not None:
            self.assertLen(layer.non_trainable_weights, expected_num_non_trainable_weights)
        self.run_serialization_test(layer)

        # Symbolic call in a functional model gives the same numbers as the eager layer.
        symbolic_inputs = _symbolic_like(input_data)
        fresh = cls(**init_kwargs)
        model = keras.Model(symbolic_inputs, fresh(symbolic_inputs))
        fresh.set_weights(layer.get_weights())
        self.assertAllClose(model(input_data), output, atol=1e-5, rtol=1e-5)

        if run_training_check:
            # One fit step on a scalar objective: every trainable weight must get a gradient.
            train_model = keras.Model(symbolic_inputs, fresh(symbolic_inputs))
            n = np.asarray(tree.flatten(input_data)[0]).shape[0]
            target = np.zeros((n,) + tuple(output.shape[1:]), dtype="float32")
            train_model.compile(optimizer="sgd", loss="mse")
            history = train_model.fit(input_data, target, batch_size=n, epochs=1, verbose=0)
            self.assertTrue(np.isfinite(history.history["loss"][0]))

        if run_precision_check:
            self.run_precision_test(
                cls, init_kwargs, input_data, expected_mixed_precision_output_dtype
            )
        return layer

    def run_precision_test(self, cls, init_kwargs, input_data, expected_output_dtype=None):
        """Under mixed_float16 the layer runs, its output is finite and, if given, of that dtype."""
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_float16")
        try:
            layer = cls(**init_kwargs)
            output = layer(input_data)
            self.assertAllFinite(output)
            if expected_output_dtype is not None:
                self.assertEqual(
                    keras.backend.standardize_dtype(output.dtype), expected_output_dtype
                )
            return output
        finally:
            keras.config.set_dtype_policy(previous)

    def run_model_saving_test(self, model, input_data, fresh_process=False, atol=0.0):
        """`.keras` save and reload give identical outputs (optionally in a new process)."""
        path = os.path.join(self.get_temp_dir(), "model.keras")
        expected = _to_numpy(model(input_data, training=False))
        model.save(path)
        reloaded = keras.saving.load_model(path)
        self.assertAllClose(reloaded(input_data, training=False), expected, atol=atol, rtol=0)
        if fresh_process:
            actual = self._predict_in_fresh_process(path, input_data)
            self.assertAllClose(actual, expected, atol=atol, rtol=0)
        return reloaded

    def _predict_in_fresh_process(self, path, input_data):
        tmp = self.get_temp_dir()
        inputs = tree.flatten(input_data)
        np.savez(os.path.join(tmp, "inputs.npz"), *[np.asarray(x) for x in inputs])
        script = textwrap.dedent(
            f"""
            import numpy as np, keras
            import tfface  # registers tfface objects; no custom_objects are passed
            data = np.load({os.path.join(tmp, "inputs.npz")!r})
            xs = [data[f"arr_{{i}}"] for i in range(len(data.files))]
            model = keras.saving.load_model({path!r})
            out = model(xs if len(xs) > 1 else xs[0], training=False)
            np.save({os.path.join(tmp, "out.npy")!r}, keras.ops.convert_to_numpy(out))
            """
        )
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
        )
        if proc.returncode != 0:
            raise AssertionError(f"fresh-process load failed:\n{proc.stderr[-4000:]}")
        return np.load(os.path.join(tmp, "out.npy"))

    def assertLen(self, container, expected_len, msg=None):
        self.assertEqual(len(container), expected_len, msg)
