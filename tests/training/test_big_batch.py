"""Big-batch tools: gradient accumulation, clipping by global norm, the XLA-compiled step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import tiny_model
from tests.training.conftest import two_replicas
from tfface.training.schema import TrainConfig
from tfface.training.trainer import STEP_APPLIED
from tfface.training.trainer import Trainer


def _config(tmp_path, **kwargs):
    defaults = dict(
        loss="arcface",
        head_kwargs={"scale": 8.0},
        steps=3,
        image_size=8,
        embedding_dim=8,
        identities_per_batch=4,
        images_per_identity=2,
        model_dir=str(tmp_path / "run"),
        learning_rate=0.05,
        optimizer="sgd",
        momentum=0.9,
        lr_schedule="constant",
        log_every=1,
    )
    defaults.update(kwargs)
    return TrainConfig(**defaults)


def _trainer(tmp_path, data, strategy=None, model=tiny_model, **kwargs):
    return Trainer(
        _config(tmp_path, **kwargs),
        strategy=strategy or tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=model,
        dataset=data,
        log=lambda *a: None,
    )


def _train(trainer, data):
    losses = []
    for images, labels in data:
        loss, _ = trainer.train_step(images, labels)
        assert int(trainer.last_status) == STEP_APPLIED
        losses.append(float(loss))
    return losses, [v.numpy() for v in trainer.trainable_variables]


def _weights(trainer):
    return [np.array(v.numpy()) for v in trainer.trainable_variables]


# === --accumulate_steps ===
@pytest.mark.parametrize(
    "loss, replicas",
    [
        ("softmax", 1),
        ("arcface", 1),
        ("arcface", 2),
        pytest.param("softmax", 2, marks=pytest.mark.slow),
    ],
)
def test_accumulated_micro_batches_equal_one_big_batch(tmp_path, make_data, replicas, loss):
    """n micro-batches, gradients summed, one update == one step on the whole batch."""
    data = make_data(p=8, k=2, num_classes=10)
    strategy = two_replicas() if replicas == 2 else None
    kwargs = {"loss": loss, "identities_per_batch": 8}
    if loss == "softmax":
        kwargs["head_kwargs"] = {}
    big = _train(_trainer(tmp_path / "big", data, strategy, **kwargs), data)
    n = 4 if replicas == 1 else 2  # micro-batches of 4 images either way
    trainer = _trainer(tmp_path / "acc", data, strategy, accumulate_steps=n, **kwargs)
    acc = _train(trainer, data)
    np.testing.assert_allclose(acc[0], big[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(acc[1], big[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert big[0][0] != big[0][-1], "the loss must move, or the comparison proves nothing"


def test_accumulation_differs_from_one_micro_batch(tmp_path, make_data):
    """The comparison above can fail: one micro-batch's update is not the big batch's."""
    data = make_data(num_batches=1, p=8, k=2, num_classes=10)
    big = _train(_trainer(tmp_path / "big", data, identities_per_batch=8), data)[1]
    trainer = _trainer(tmp_path / "half", data, identities_per_batch=4)
    images, labels = data[0]
    trainer.train_step(images[:8], labels[:8])
    assert max(np.abs(a - b).max() for a, b in zip(_weights(trainer), big, strict=True)) > 1e-4


def bn_model(config):
    s = config.image_size
    inputs = keras.Input((s, s, 3), dtype="float32")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.5)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.UnitNormalization()(keras.layers.Dense(config.embedding_dim)(x))
    return keras.Model(inputs, x)


def test_batchnorm_statistics_see_micro_batches(tmp_path, make_data):
    """What README documents: with accumulation the BN moving statistics are updated once
    per micro-batch, from that micro-batch's own statistics (both with the weights before
    the update)."""
    data = make_data(num_batches=1, p=8, k=2, num_classes=10)
    images, labels = data[0]
    trainer = _trainer(tmp_path, data, model=bn_model, identities_per_batch=8, accumulate_steps=2)
    conv, bn = trainer.model.layers[2], trainer.model.layers[3]
    conv_out = keras.Model(trainer.model.input, conv.output)
    expected = np.zeros(4, np.float32)
    for half in (images[:8], images[8:]):
        expected = 0.5 * expected + 0.5 * conv_out(half).numpy().mean(axis=(0, 1, 2))
    whole = conv_out(images).numpy().mean(axis=(0, 1, 2))
    trainer.train_step(images, labels)
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-5)
    # Not what one pass over the whole batch gives (0.5 · whole-batch mean).
    assert np.abs(bn.moving_mean.numpy() - 0.5 * whole).max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"accumulate_steps": 0}, "`accumulate_steps` must be a positive int"),
        ({"accumulate_steps": 1.5}, "`accumulate_steps` must be a positive int"),
        ({"accumulate_steps": 3}, "must be divisible by `accumulate_steps`"),
        (
            {"loss": "triplet", "head_kwargs": {}, "accumulate_steps": 2},
            "its mining would see only one micro-batch",
        ),
        ({"clip_norm": 0.0}, "`clip_norm` must be a finite number > 0"),
        ({"clip_norm": -1.0}, "`clip_norm` must be a finite number > 0"),
        ({"clip_norm": float("inf")}, "`clip_norm` must be a finite number > 0"),
        ({"partial_fc": 0.1, "accumulate_steps": 2}, "`accumulate_steps`: not with `partial_fc`"),
        ({"partial_fc": 0.1, "clip_norm": 1.0, "jit": True}, "`clip_norm`, `jit`: not with"),
    ],
)
def test_config_rejects(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **kwargs).validate()


def test_replica_share_must_split_into_micro_batches(tmp_path, make_data):
    # 8 images over 2 replicas: 4 each, not divisible into 8 micro-batches.
    with pytest.raises(ValueError, match="share of the global batch must be divisible"):
        _trainer(tmp_path, make_data(), two_replicas(), accumulate_steps=8)


# === --clip_norm ===
def _update_norm(tmp_path, data, strategy=None, **kwargs):
    """The global norm of the first update divided by the learning rate (plain SGD)."""
    trainer = _trainer(tmp_path, data, strategy, momentum=0.0, **kwargs)
    if kwargs.get("mixed_precision"):
        # A loss scale of 128 (not 1, so that unscaling matters) that does not overflow
        # float16 here, where the starting 2^15 would skip the step.
        trainer.optimizer.dynamic_scale.assign(128.0)
    before = _weights(trainer)
    images, labels = data[0]
    _, stats = trainer.train_step(images, labels)
    assert int(trainer.last_status) == STEP_APPLIED
    delta = [a - b for a, b in zip(_weights(trainer), before, strict=True)]
    norm = float(np.sqrt(sum(np.sum(d.astype(np.float64) ** 2) for d in delta)))
    return norm / kwargs.get("learning_rate", 0.05), stats


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # fp16 UnitNormalization ε
@pytest.mark.parametrize("replicas", [1, pytest.param(2, marks=pytest.mark.slow)])
@pytest.mark.parametrize("mixed_precision", [False, True])
def test_clip_norm_limits_the_applied_update(tmp_path, make_data, replicas, mixed_precision):
    data = make_data(num_batches=1, image_size=16)
    strategy = two_replicas() if replicas == 2 else None
    common = dict(image_size=16, mixed_precision=mixed_precision)
    raw, _ = _update_norm(tmp_path / "raw", data, strategy, **common)
    assert raw > 0.2
    # Above the norm: the update is scaled to exactly clip_norm (after unscaling).
    clipped, stats = _update_norm(tmp_path / "clip", data, strategy, clip_norm=0.1, **common)
    np.testing.assert_allclose(clipped, 0.1, rtol=1e-3)
    # The reported norm is the unclipped, unscaled, all-reduced one.
    np.testing.assert_allclose(float(stats["grad_norm"]), raw, rtol=1e-3)
    # Below it: untouched.
    loose, _ = _update_norm(tmp_path / "loose", data, strategy, clip_norm=raw * 2, **common)
    np.testing.assert_allclose(loose, raw, rtol=1e-5)


def test_clip_norm_applies_to_the_accumulated_gradient(tmp_path, make_data):
    data = make_data(num_batches=1, p=8, k=2, num_classes=10)
    kwargs = dict(identities_per_batch=8, clip_norm=0.05)
    norm, _ = _update_norm(tmp_path / "a", data, accumulate_steps=2, **kwargs)
    np.testing.assert_allclose(norm, 0.05, rtol=1e-4)


# === --jit ===
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"accumulate_steps": 2, "clip_norm": 0.5},
        pytest.param({"loss": "triplet", "head_kwargs": {}}, marks=pytest.mark.slow),
    ],
    ids=["arcface", "arcface-accumulate-clip", "triplet"],
)
def test_jit_step_equals_the_plain_step(tmp_path, make_data, kwargs):
    data = make_data()
    plain = _train(_trainer(tmp_path / "plain", data, **kwargs), data)
    jit = _train(_trainer(tmp_path / "jit", data, jit=True, **kwargs), data)
    np.testing.assert_allclose(jit[0], plain[0], rtol=1e-4, atol=1e-5)
    for a, b in zip(jit[1], plain[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs",
    [
        {"head_kwargs": {"scale": 8.0}},
        {"loss": "triplet", "head_kwargs": {}, "mining_scope": "replica"},
    ],
    ids=["arcface", "triplet-replica-mining"],
)
def test_jit_step_under_mirrored_strategy(tmp_path, make_data, kwargs):
    data = make_data()
    plain = _train(_trainer(tmp_path / "plain", data, two_replicas(), **kwargs), data)
    jit = _train(_trainer(tmp_path / "jit", data, two_replicas(), jit=True, **kwargs), data)
    np.testing.assert_allclose(jit[0], plain[0], rtol=1e-4, atol=1e-5)
    for a, b in zip(jit[1], plain[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_jit_refuses_global_mining_on_several_replicas(tmp_path, make_data):
    """Global mining all-gathers inside the compiled function: tf.distribute refuses that
    sync point in a nested tf.function (`merge_call` error), so the Trainer says why first."""
    with pytest.raises(ValueError, match="cannot compile loss='triplet' with mining_scope"):
        _trainer(tmp_path, make_data(), two_replicas(), loss="triplet", head_kwargs={}, jit=True)
