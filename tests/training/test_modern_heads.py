"""The modern margin heads in training: each trains through the Trainer, MagFace's
regulariser is in the objective, CurricularFace's t and AdaFace's norm statistics move
(on one device and under MirroredStrategy), ElasticFace repeats with the run's seed."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import two_replicas
from tfface.training import heads
from tfface.training.objective import Objective
from tfface.training.schema import TrainConfig
from tfface.training.trainer import STEP_APPLIED
from tfface.training.trainer import Trainer

NEW_HEADS = (
    "adaface",
    "magface",
    "curricularface",
    "subcenter",
    "elastic_arcface",
    "elastic_cosface",
)


def _config(tmp_path, loss, **kwargs):
    defaults = dict(
        loss=loss,
        steps=3,
        backbone="small_cnn",
        image_size=16,
        embedding_dim=8,
        identities_per_batch=4,
        images_per_identity=2,
        model_dir=str(tmp_path / loss),
        learning_rate=0.01,
        optimizer="sgd",
        lr_schedule="constant",
        log_every=1,
    )
    defaults.update(kwargs)
    return TrainConfig(**defaults)


def _train(config, data, strategy=None):
    """The Trainer builds train.py's model (unit embeddings and raw features)."""
    trainer = Trainer(
        config,
        strategy=strategy or tf.distribute.OneDeviceStrategy("/cpu:0"),
        dataset=data,
        log=lambda *a: None,
    )
    losses, stats = [], []
    for images, labels in data:
        loss, step_stats = trainer.train_step(images, labels)
        assert int(trainer.last_status) == STEP_APPLIED
        losses.append(float(loss))
        stats.append({k: float(v) for k, v in step_stats.items()})
    return trainer, losses, stats


def test_the_table_has_the_new_heads():
    assert set(NEW_HEADS) <= set(heads.LOSSES)
    for loss in ("adaface", "magface"):
        assert heads.get_head(loss).raw_features and heads.get_head(loss).quality


@pytest.mark.parametrize("loss", NEW_HEADS)
def test_every_new_head_trains(tmp_path, make_data, loss):
    data = make_data(num_batches=3, image_size=16)
    trainer, losses, stats = _train(_config(tmp_path, loss), data)
    assert all(math.isfinite(v) for v in losses)
    assert losses[0] != losses[-1]
    kernel = trainer.objective.head.kernel.numpy()
    assert np.all(np.isfinite(kernel))
    if heads.get_head(loss).quality:
        # The head read the raw features: their norm is logged and is not 1.
        assert all(abs(s["feature_norm"] - 1.0) > 1e-3 for s in stats)
    if loss in ("adaface", "curricularface"):
        # Their EMA statistics (non-trainable weights) moved during training.
        moved = [w for w in trainer.objective.head.non_trainable_weights if "seed" not in w.path]
        initial = {"t": 0.0, "batch_mean": 20.0, "batch_std": 100.0}
        assert moved and all(float(w.numpy()) != initial[w.name] for w in moved)


def _features_and_labels():
    rng = np.random.default_rng(0)
    features = (rng.normal(size=(8, 4)) * 10).astype("float32")  # ‖x‖ around 20
    labels = np.repeat(np.arange(4), 2)
    return features, labels


def test_magface_regulariser_is_in_the_objective():
    """loss = cross-entropy + λ_g · mean g(a): the layer's add_loss reaches the objective."""
    features, labels = _features_and_labels()
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    objective = Objective("magface", 4)
    objective.build(4)
    loss, stats = objective(unit, labels, training=True, features=features)
    head = objective.head
    logits = head([features, labels], training=True)
    ce = float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, True)))
    g = float(head.regularizer(features))
    assert g > 0
    np.testing.assert_allclose(float(stats["head_loss"]), 35.0 * g, rtol=1e-5)
    np.testing.assert_allclose(float(loss), ce + 35.0 * g, rtol=1e-5)


def test_magface_regulariser_gradient_reaches_the_features():
    """With λ_g = 0 the gradient wrt the features differs: g(a) is in the objective's graph."""
    features, labels = _features_and_labels()
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)

    def gradient(lambda_g):
        objective = Objective("magface", 4, head_kwargs={"lambda_g": lambda_g})
        objective.build(4)
        objective.head.kernel.assign(np.eye(4, dtype="float32"))
        x = tf.constant(features)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss, _ = objective(unit, labels, training=True, features=x)
        return tape.gradient(loss, x).numpy()

    with_g, without = gradient(35.0), gradient(0.0)
    assert np.all(np.isfinite(with_g)) and not np.allclose(with_g, without)


@pytest.mark.parametrize("loss", ["elastic_arcface", "elastic_cosface"])
def test_elastic_margins_repeat_with_the_run_seed(loss):
    features, labels = _features_and_labels()
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)

    def losses(seed):
        objective = Objective(loss, 4, head_kwargs={"std": 0.3}, seed=seed)
        objective.build(4)
        objective.head.kernel.assign(np.eye(4, dtype="float32"))
        return [float(objective(unit, labels, training=True)[0]) for _ in range(3)]

    first = losses(1)
    assert first == losses(1)
    assert first != losses(2)
    assert len(set(first)) == 3  # a new draw each step


def test_config_head_kwargs_seed_wins_over_the_run_seed():
    objective = Objective("elastic_cosface", 4, head_kwargs={"seed": 7}, seed=1)
    assert objective.head.seed == 7
    assert Objective("elastic_cosface", 4, seed=1).head.seed == 1


def test_curricularface_t_under_mirrored_strategy_equals_one_device(tmp_path, make_data):
    """t (mean-aggregated) follows the global batch: two replicas end with one device's t.
    Within a step each replica modulates with the t of its own shard, so the losses agree
    only closely (the tiny model has no BatchNorm: nothing else differs)."""
    from tests.training.conftest import tiny_model

    data = make_data()
    results = []
    for name, strategy in (("one", None), ("two", two_replicas())):
        kwargs = dict(image_size=8, head_kwargs={"scale": 8.0})
        config = _config(tmp_path / name, "curricularface", **kwargs)
        trainer = Trainer(
            config,
            strategy=strategy or tf.distribute.OneDeviceStrategy("/cpu:0"),
            model=tiny_model,
            dataset=data,
            log=lambda *a: None,
        )
        losses = [float(trainer.train_step(images, labels)[0]) for images, labels in data]
        results.append((losses, float(trainer.objective.head.t.numpy())))
    (losses_one, t_one), (losses_two, t_two) = results
    assert t_one != 0.0
    np.testing.assert_allclose(t_two, t_one, atol=1e-5)
    np.testing.assert_allclose(losses_two, losses_one, rtol=1e-2)
