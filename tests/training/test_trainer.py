"""Trainer behaviour on one device: resume, NaN policy, mixed precision, flags."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import tiny_model
from tfface.training.config import TrainConfig
from tfface.training.trainer import NAN_TEST_HOOK_ENV
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


def _trainer(config, data, **kwargs):
    return Trainer(
        config,
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=tiny_model,
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


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, make_data, monkeypatch):
    monkeypatch.setenv(NAN_TEST_HOOK_ENV, "2")  # 0-based: the third step gets NaN pixels
    data = make_data(num_batches=6)
    trainer = _trainer(_config(tmp_path, steps=6), data)
    with pytest.raises(NonFiniteLossError, match="at step 3"):
        trainer.fit()
    ckpt_dir = tmp_path / "checkpoints"
    assert tf.train.latest_checkpoint(str(ckpt_dir)).endswith("ckpt-2")
    assert not any(name.startswith("ckpt-3") for name in os.listdir(ckpt_dir))
    reader = tf.train.load_checkpoint(str(ckpt_dir))
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name


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
    from tests.training.test_trainer_distribute import _mirrored

    with pytest.raises(ValueError, match="divisible by the number of replicas"):
        Trainer(
            _config(tmp_path, identities_per_batch=3),
            strategy=_mirrored(),
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
