"""Checks of the random margin shared by ElasticFace-Arc and -Cos (tests mix this in)."""

import math
import os

import keras
import numpy as np
import pytest

from tests.layers import reference
from tests.layers.distribute import mirrored_strategy
from tests.layers.head_test_base import DIM
from tests.layers.head_test_base import HeadChecks
from tests.layers.head_test_base import random_case


def elastic_logits(kind, x, w, labels, margins, scale=64.0):
    """Boutros et al. (CVPRW 2022): target s·cos(θ_y + m_i) ("arc", no fallback, as the
    official code) or s·(cos θ_y − m_i) ("cos"); s·cos θ_j elsewhere. `margins`: one per
    sample, or a float for all."""
    _, table = reference.cosine_table(x, w)
    logits = np.zeros((x.shape[0], w.shape[1]))
    for i in range(x.shape[0]):
        m = margins if np.isscalar(margins) else float(margins[i])
        for j in range(w.shape[1]):
            value = table[i][j]
            if labels is not None and j == int(labels[i]):
                value = math.cos(math.acos(value) + m) if kind == "arc" else value - m
            logits[i, j] = scale * value
    return logits


def plus_assignment(cos_target, draws):
    """ElasticFace+: the sample with the k-th largest cos θ_y gets the k-th smallest draw."""
    ascending = sorted(float(d) for d in draws)
    margins = []
    for i, c in enumerate(cos_target):
        rank = 0
        for j, other in enumerate(cos_target):
            if other > c or (other == c and j < i):
                rank += 1
        margins.append(ascending[rank])
    return margins


def target_cosines(x, w, labels):
    _, table = reference.cosine_table(x.astype(np.float64), w.astype(np.float64))
    return [table[i][int(labels[i])] for i in range(len(labels))]


class ElasticChecks(HeadChecks):
    """Set `kind` ("arc" or "cos"), `mean_margin` (the layer's default m) and `init_kwargs`."""

    kind = None
    mean_margin = None

    def reference_logits(self, x, w, labels, frozen_x=None):
        return elastic_logits(self.kind, x, w, labels, self.mean_margin)

    def test_layer_harness_training_inputs(self):
        x, _, labels = random_case()
        self.run_layer_test(
            cls=self.layer_cls,
            init_kwargs=self.init_kwargs,
            input_data=[x, labels],
            expected_output_shape=(x.shape[0], 6),
            expected_output_dtype="float32",
            expected_mixed_precision_output_dtype="float32",
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=1,  # seed_state
        )

    def test_training_calls_use_the_seeded_draws(self):
        x, w, labels = random_case(1, batch=8)
        head = self.make_head(x, w, seed=3)
        # Same arguments and generator state, its own kernel.
        twin = self.layer_cls(**{**self.init_kwargs, "seed": 3})
        cos_target = np.asarray(target_cosines(x, w, labels), "float32")
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        previous = None
        for call in range(2):
            logits = keras.ops.convert_to_numpy(head([x, labels], training=True))
            margins = keras.ops.convert_to_numpy(twin.sample_margins(cos_target))
            expected = elastic_logits(self.kind, x64, w64, labels, margins)
            self.assertAllClose(logits, expected, atol=2e-4, msg=f"call {call}")
            if previous is not None:
                self.assertFalse(np.allclose(logits, previous), "a new draw on every call")
            previous = logits
        self.assertGreater(float(np.std(margins)), 0.0)

    def test_no_randomness_outside_training(self):
        x, w, labels = random_case(2)
        head = self.make_head(x, w, seed=4)
        state = keras.ops.convert_to_numpy(head.seed_state.value)
        first = head([x, labels])
        self.assertAllEqual(head([x, labels], training=False), first)
        self.assertAllEqual(head([x, labels]), first)
        head(x, training=True)  # inference logits: no margin, no draw
        self.assertAllEqual(keras.ops.convert_to_numpy(head.seed_state.value), state)
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        expected = elastic_logits(self.kind, x64, w64, labels, self.mean_margin)
        self.assertAllClose(first, expected, atol=2e-4)

    def test_margins_follow_the_normal_distribution(self):
        """n = 4,000 draws: the sample mean lies within 4 standard errors of m and the
        sample standard deviation within 10% of σ (seeded, so the check is repeatable)."""
        n, std = 4000, 0.05
        head = self.layer_cls(num_classes=2, std=std, seed=11)
        draws = keras.ops.convert_to_numpy(head.sample_margins(np.zeros(n, "float32")))
        self.assertEqual(draws.shape, (n,))
        self.assertLess(abs(float(np.mean(draws)) - self.mean_margin), 4 * std / math.sqrt(n))
        self.assertAllClose(np.std(draws, ddof=1), std, rtol=0.1)
        same = self.layer_cls(num_classes=2, std=std, seed=11)
        self.assertAllEqual(same.sample_margins(np.zeros(n, "float32")), draws)
        other = self.layer_cls(num_classes=2, std=std, seed=12)
        self.assertFalse(np.allclose(other.sample_margins(np.zeros(n, "float32")), draws))

    def test_plus_hands_the_largest_margins_to_the_hardest_samples(self):
        cos_target = np.random.default_rng(5).uniform(-0.5, 1.0, size=16).astype("float32")
        plus = self.layer_cls(num_classes=2, plus=True, seed=21)
        plain = self.layer_cls(num_classes=2, seed=21)
        margins = keras.ops.convert_to_numpy(plus.sample_margins(cos_target))
        draws = keras.ops.convert_to_numpy(plain.sample_margins(cos_target))
        self.assertAllClose(margins, plus_assignment(cos_target, draws), atol=0)
        order = np.argsort(-cos_target)  # easiest first
        self.assertTrue(np.all(np.diff(margins[order]) >= 0))

    def test_plus_training_logits_match_reference(self):
        x, w, labels = random_case(6, batch=8)
        head = self.make_head(x, w, plus=True, seed=8)
        plain = self.layer_cls(**{**self.init_kwargs, "plus": False, "seed": 8})
        cos_target = target_cosines(x, w, labels)
        draws = keras.ops.convert_to_numpy(plain.sample_margins(np.zeros(8, "float32")))
        margins = plus_assignment(cos_target, draws)
        expected = elastic_logits(
            self.kind, x.astype(np.float64), w.astype(np.float64), labels, margins
        )
        self.assertAllClose(head([x, labels], training=True), expected, atol=2e-4)

    def test_seed_state_survives_keras_save(self):
        x, _, labels = random_case(3, batch=12)
        embeddings = keras.Input((DIM,))
        label_input = keras.Input((), dtype="int64")
        head = self.layer_cls(num_classes=6, seed=9)
        model = keras.Model([embeddings, label_input], head([embeddings, label_input]))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit([x, labels], labels, batch_size=4, epochs=1, verbose=0)
        self.assertNotEqual(int(keras.ops.convert_to_numpy(head.seed_state.value)[1]), 0)
        reloaded = self.run_model_saving_test(model, [x, labels])
        revived = reloaded.layers[-1]
        self.assertAllEqual(
            keras.ops.convert_to_numpy(revived.seed_state.value),
            keras.ops.convert_to_numpy(head.seed_state.value),
        )
        cos_target = np.zeros(5, "float32")
        # The run goes on with the draws it would have made without the save.
        self.assertAllEqual(revived.sample_margins(cos_target), head.sample_margins(cos_target))

    @pytest.mark.tensorflow_only
    def test_seed_state_survives_checkpoint(self):
        import tensorflow as tf

        head = self.layer_cls(num_classes=2, seed=10)
        head.build((None, DIM))
        cos_target = np.zeros(3, "float32")
        for _ in range(3):
            head.sample_margins(cos_target)
        path = tf.train.Checkpoint(head=head).write(os.path.join(self.get_temp_dir(), "ckpt"))
        restored = self.layer_cls(num_classes=2, seed=10)
        restored.build((None, DIM))
        tf.train.Checkpoint(head=restored).read(path).assert_consumed()
        self.assertAllEqual(restored.seed_state.numpy(), head.seed_state.numpy())
        self.assertAllEqual(restored.sample_margins(cos_target), head.sample_margins(cos_target))

    @pytest.mark.tensorflow_only
    def test_replicas_draw_different_margins(self):
        """Under MirroredStrategy replica r takes row r of a [2, B] draw from the shared
        generator state, so the replicas' i-th samples get different margins."""
        import tensorflow as tf

        strategy = mirrored_strategy()
        with strategy.scope():
            head = self.layer_cls(num_classes=2, seed=13)
        cos_target = tf.zeros(4)

        @tf.function
        def draw():
            return strategy.run(lambda: head.sample_margins(cos_target))

        per_replica = [t.numpy() for t in strategy.experimental_local_results(draw())]
        self.assertLen(per_replica, 2)
        self.assertFalse(np.allclose(per_replica[0], per_replica[1]))
        twin = self.layer_cls(num_classes=2, seed=13)
        rows = keras.random.normal(
            (2, 4), mean=twin.margin, stddev=twin.std, dtype="float32", seed=twin.seed_generator
        )
        self.assertAllClose(np.stack(per_replica), keras.ops.convert_to_numpy(rows), atol=0)

    def test_rejects_bad_arguments(self):
        for kwargs, message in (
            ({"margin": -0.1}, "Received: margin=-0.1"),
            ({"std": -0.01}, "Received: std=-0.01"),
            ({"plus": 1}, "Received: plus=1"),
            ({"seed": 1.5}, "Received: seed=1.5"),
            ({"scale": None}, "Received: scale=None"),
        ):
            with self.assertRaisesRegex(ValueError, message):
                self.layer_cls(num_classes=3, **kwargs)
