"""Trainer behaviour on one device: resume, non-finite guard, mixed precision, flags."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import FixedData
from tests.training.conftest import tiny_model
from tfface.training.schema import TrainConfig
from tfface.training.trainer import MAX_CONSECUTIVE_SKIPPED_STEPS
from tfface.training.trainer import NonFiniteLossError
from tfface.training.trainer import Trainer


def _config(model_dir, **kwargs):
    defaults = dict(
        loss="softmax",
        steps=4,
        image_size=8,
        embedding_dim=8,
        identities_per_batch=4,
        images_per_identity=2,
        model_dir=str(model_dir),
        learning_rate=0.05,
        optimizer="adam",
        lr_schedule="constant",
        log_every=1,
        checkpoint_every=2,
    )
    defaults.update(kwargs)
    return TrainConfig(**defaults)


def _trainer(config, data, model=tiny_model, **kwargs):
    return Trainer(
        config,
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=model,
        dataset=data,
        log=lambda *a: None,
        **kwargs,
    )


def _state(trainer):
    weights = list(trainer.model.weights) + [
        w for layer in trainer.objective.layers for w in layer.weights
    ]
    return [np.asarray(w.numpy()) for w in weights] + [
        np.asarray(v.numpy()) for v in trainer.optimizer.variables
    ]


@pytest.mark.parametrize("loss", ["softmax", "center", "sphereface"])
def test_resume_continues_like_uninterrupted(tmp_path, make_data, loss):
    """2 steps, a new Trainer on the same model_dir for 2 more = 4 uninterrupted steps,
    including optimizer slots, CenterLoss centers and SphereFace's λ iteration counter."""
    data = make_data(num_batches=4)
    full = _trainer(_config(tmp_path / "full", loss=loss, steps=4), data)
    full.fit()

    first = _trainer(_config(tmp_path / "split", loss=loss, steps=2), data)
    assert first.fit()["final_step"] == 2
    logs = []
    second = Trainer(
        _config(tmp_path / "split", loss=loss, steps=4),
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=tiny_model,
        dataset=data,
        log=logs.append,
    )
    summary = second.fit()
    assert summary["start_step"] == 2 and summary["final_step"] == 4
    assert any("Resumed from" in line and "step 2/4" in line for line in logs)
    for a, b in zip(_state(full), _state(second), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


class NaNToZeroReLU(keras.layers.Layer):
    """ReLU that maps NaN to 0 in the forward pass, as oneDNN's fused Conv2D+BiasAdd+ReLU
    (`_MklNativeFusedConv2D`) does on AVX-512 CPUs (BUILD_NOTES.md, NaN guard). With it, a
    NaN batch gives a finite loss on every CPU while the kernel gradient is NaN."""

    def call(self, x):
        return keras.ops.relu(keras.ops.where(keras.ops.isnan(x), 0.0, x))


def nan_hiding_model(config):
    s = config.image_size
    inputs = keras.Input((s, s, 3), dtype="float32")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = NaNToZeroReLU()(keras.layers.Conv2D(4, 3, strides=2)(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(config.embedding_dim)(x)
    x = keras.layers.UnitNormalization()(x)
    return keras.Model(inputs, x)


def bn_model(config):
    """Conv → BatchNorm → ReLU: BN moving statistics change in the forward pass."""
    s = config.image_size
    inputs = keras.Input((s, s, 3), dtype="float32")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(config.embedding_dim)(x)
    return keras.Model(inputs, x)


def nan_hiding_bn_model(config):
    """NaN hidden from the loss (as oneDNN does) before a BatchNorm: the forward pass moves
    the BN statistics on a step whose gradients are NaN."""
    s = config.image_size
    inputs = keras.Input((s, s, 3), dtype="float32")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = NaNToZeroReLU()(keras.layers.Conv2D(4, 3, strides=2)(x))
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(config.embedding_dim)(x)
    x = keras.layers.UnitNormalization()(x)
    return keras.Model(inputs, x)


def _with_nan_batch(data, index):
    batches = [(images.copy(), labels) for images, labels in data]
    batches[index][0][:] = np.nan
    return FixedData(batches, data.num_classes)


def _checkpoint_values(path):
    """Float tensors of a checkpoint (a tf.data iterator's variant state cannot be read)."""
    reader = tf.train.load_checkpoint(path)
    dtypes = reader.get_variable_to_dtype_map()
    return {name: reader.get_tensor(name) for name, dtype in dtypes.items() if dtype.is_floating}


@pytest.mark.parametrize(
    "model",
    [tiny_model, nan_hiding_model, nan_hiding_bn_model],
    ids=["plain", "nan_hidden", "nan_hidden_bn"],
)
def test_nan_batch_is_never_applied_nor_saved(tmp_path, make_data, model):
    """NaN pixels at step 3 (from the dataset): the step is not applied, the run stops naming
    step 3 and ckpt-2, and memory and disk hold only finite values. `nan_hidden` hides the
    NaN from the loss, as oneDNN does on some CPUs: only a gradient check catches it;
    `nan_hidden_bn` also has BatchNorm statistics that the skipped forward pass moved."""
    data = _with_nan_batch(make_data(num_batches=6), index=2)
    if model is nan_hiding_model:
        probe = model(_config(tmp_path))
        assert np.all(np.isfinite(probe(data[2][0]))), "the forward pass must hide the NaN"
    trainer = Trainer(
        _config(tmp_path, steps=6),
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=model,
        dataset=data,
        log=lambda *a: None,
    )
    with pytest.raises(NonFiniteLossError, match="at step 3") as error:
        trainer.fit()
    ckpt_dir = tmp_path / "checkpoints"
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    assert latest.endswith("ckpt-2") and error.value.last_checkpoint == latest
    assert error.value.step == 3 and "ckpt-2" in str(error.value)
    assert not any(name.startswith("ckpt-3") for name in os.listdir(ckpt_dir))
    assert int(trainer.step.numpy()) == 2
    saved = _checkpoint_values(latest)
    assert saved and all(np.all(np.isfinite(v)) for v in saved.values())
    # Nothing of step 3 reached memory either: the state is still exactly ckpt-2's.
    state = _state(trainer)
    assert all(np.all(np.isfinite(v)) for v in state)
    reference = _trainer(_config(tmp_path / "ref", steps=2), data, model=model)
    reference.fit()
    for a, b in zip(_state(reference), state, strict=True):
        np.testing.assert_array_equal(a, b)


def test_diverging_sgd_never_saves_nonfinite_values(tmp_path, make_data):
    """The issue's diverging run in small: SGD at a huge learning rate with a checkpoint
    every step. The loss stays finite for a while after the weights or BatchNorm statistics
    overflow; every checkpoint on disk must still be finite, the last one being the step
    before the stop."""
    data = make_data(num_batches=40, image_size=16)
    config = _config(
        tmp_path,
        steps=40,
        image_size=16,
        optimizer="sgd",
        learning_rate=1e4,
        checkpoint_every=1,
        keep_checkpoints=100,
    )
    trainer = _trainer(config, data, model=bn_model)
    with pytest.raises(NonFiniteLossError) as error:
        trainer.fit()
    stop = error.value.step
    assert 1 < stop < 40
    state = tf.train.get_checkpoint_state(str(tmp_path / "checkpoints"))
    paths = list(state.all_model_checkpoint_paths)
    assert paths[-1] == error.value.last_checkpoint and paths[-1].endswith(f"ckpt-{stop - 1}")
    assert len(paths) == stop - 1
    for path in paths:
        values = _checkpoint_values(path)
        assert any("moving_variance" in name for name in values)  # BN statistics are checked
        for name, value in values.items():
            assert np.all(np.isfinite(value)), (path, name)


def _mixed_trainer(tmp_path, data, steps):
    config = _config(
        tmp_path, loss="arcface", head_kwargs={"scale": 16.0}, image_size=16, steps=steps
    )
    config.mixed_precision = True
    return _trainer(config, data, model=tiny_model)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # fp16 UnitNormalization ε
def test_mixed_precision_skips_overflowing_steps_and_recovers(tmp_path, make_data):
    """An overflowing loss scale makes LossScaleOptimizer-style skips (scale halved, weights
    untouched) until the scale fits; the run goes on and ends finite."""
    data = make_data(num_batches=12, image_size=16)
    trainer = _mixed_trainer(tmp_path, data, steps=12)
    trainer.optimizer.dynamic_scale.assign(2.0**22)  # overflows float16 gradients
    summary = trainer.fit()
    assert summary["final_step"] == 12
    applied = int(trainer.optimizer.iterations.numpy())
    assert 0 < applied < 12, "some steps must be skipped, some applied"
    assert float(trainer.optimizer.dynamic_scale.numpy()) == 2.0 ** (22 - (12 - applied))
    assert all(np.all(np.isfinite(v)) for v in _state(trainer))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # fp16 UnitNormalization ε
def test_mixed_precision_stops_after_consecutive_skips(tmp_path, make_data):
    steps = MAX_CONSECUTIVE_SKIPPED_STEPS + 2
    data = make_data(num_batches=steps, image_size=16)
    trainer = _mixed_trainer(tmp_path, data, steps=steps)
    trainer.optimizer.dynamic_scale.assign(1e30)  # no number of halvings brings it back
    with pytest.raises(NonFiniteLossError, match=f"{MAX_CONSECUTIVE_SKIPPED_STEPS} consecutive"):
        trainer.fit()
    assert int(trainer.optimizer.iterations.numpy()) == 0
    # Skipped steps leave the state finite, so periodic saves went on; all of them are finite.
    state = tf.train.get_checkpoint_state(str(tmp_path / "checkpoints"))
    for path in state.all_model_checkpoint_paths:
        assert all(np.all(np.isfinite(v)) for v in _checkpoint_values(path).values())


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # fp16 UnitNormalization ε
def test_mixed_precision_skipped_steps_leave_batchnorm_statistics_alone(tmp_path, make_data):
    """Every step overflows and is skipped: BN moving statistics stay at their initial
    values although each forward pass computed new ones."""
    data = make_data(num_batches=3, image_size=16)
    config = _config(tmp_path, loss="arcface", head_kwargs={"scale": 16.0}, image_size=16)
    config.steps, config.mixed_precision = 3, True
    trainer = _trainer(config, data, model=bn_model)
    trainer.optimizer.dynamic_scale.assign(1e30)
    trainer.fit()
    assert int(trainer.optimizer.iterations.numpy()) == 0
    bn = [v for v in trainer.model.variables if "moving" in v.path]
    assert len(bn) == 2
    for v in bn:
        initial = 0.0 if "moving_mean" in v.path else 1.0
        np.testing.assert_array_equal(v.numpy(), np.full(v.shape, initial, np.float32))


def test_mixed_precision_steps_are_finite(tmp_path, make_data):
    data = make_data(num_batches=2, image_size=16)
    config = _config(tmp_path, loss="arcface", head_kwargs={"scale": 16.0}, image_size=16)
    config.mixed_precision = True
    trainer = Trainer(
        config,
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        dataset=data,
        log=lambda *a: None,
    )
    assert keras.config.dtype_policy().name == "float32", "global policy must be restored"
    assert trainer.model.get_layer(index=2).dtype_policy.compute_dtype == "float16"
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    for images, labels in data:
        loss, stats = trainer.train_step(images, labels)
        assert np.isfinite(float(loss)) and float(loss) > 0
        assert np.isfinite(float(stats["accuracy"]))


def test_identities_must_split_across_replicas(tmp_path, make_data):
    from tests.training.conftest import two_replicas

    with pytest.raises(ValueError, match="divisible by the number of replicas"):
        Trainer(
            _config(tmp_path, identities_per_batch=3),
            strategy=two_replicas(),
            model=tiny_model,
            dataset=make_data(p=3),
        )


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("loss", "magic", "`loss` must be one of"),
        ("mining", "easy", "`mining` must be one of"),
        ("steps", 0, "Set `steps` or `epochs`"),
        ("image_size", 0, "`image_size` must be a positive int"),
        ("learning_rate", -1.0, "`learning_rate` must be > 0"),
    ],
)
def test_config_validation(tmp_path, field, value, message):
    config = _config(tmp_path)
    setattr(config, field, value)
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_triplet_needs_two_images_per_identity(tmp_path):
    config = _config(tmp_path, loss="triplet", images_per_identity=1)
    with pytest.raises(ValueError, match="at least two images per identity"):
        config.validate()
