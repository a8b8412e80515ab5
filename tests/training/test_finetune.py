"""Issue 17 defects 1 and 2, the fast parts: fine-tuning defaults, the collapse guard,
BatchNorm freezing, the exported template, the identity-disjoint evaluation split."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import FixedData
from tests.training.conftest import fixed_batches
from tests.training.conftest import tiny_model
from tfface import model_metadata
from tfface.training import eval_split
from tfface.training import pipeline
from tfface.training.errors import EmbeddingCollapseError
from tfface.training.schema import FINETUNE_LEARNING_RATE
from tfface.training.schema import TrainConfig
from tfface.training.trainer import COLLAPSE_STEPS
from tfface.training.trainer import Trainer
from tfface.training.trainer import freeze_batchnorm
from tfface.training.trainer import mean_pairwise_cosine

DLIB = dict(backbone="dlib_resnet_v1", pretrained=True, image_size=150, embedding_dim=128)


# === Defaults ===
def test_pretrained_runs_default_to_finetuning_settings():
    """The README's recipe (`--pretrained`, no --learning_rate) ran at 1e-3 with no
    warm-up and collapsed dlib_resnet_v1 in one step (loss 0.2000, threshold 1.0000)."""
    config = TrainConfig(steps=50, **DLIB).validate()
    assert config.learning_rate == FINETUNE_LEARNING_RATE == 1e-5
    assert config.warmup_steps == 5
    assert config.freeze_batchnorm is True


def test_given_settings_win_over_the_finetuning_defaults():
    config = TrainConfig(
        steps=50, learning_rate=1e-3, warmup_steps=0, freeze_batchnorm=False, **DLIB
    ).validate()
    assert (config.learning_rate, config.warmup_steps, config.freeze_batchnorm) == (
        1e-3,
        0,
        False,
    )


def test_training_from_scratch_keeps_its_defaults():
    config = TrainConfig(steps=50).validate()
    assert (config.learning_rate, config.warmup_steps, config.freeze_batchnorm) == (
        1e-3,
        0,
        False,
    )


@pytest.mark.parametrize(
    "data, given, expected",
    [
        ("synthetic", None, "synthetic"),
        ("synthetic:500", None, "synthetic"),
        ("folder:/photos", None, "split"),
        ("tfrecord:/d/*.tfrecord", None, "split"),
        ("folder:/photos", "synthetic", "synthetic"),
        ("folder:/photos", "bin:/d/lfw.bin", "bin:/d/lfw.bin"),
    ],
)
def test_eval_data_defaults_to_a_split_of_the_users_own_data(data, given, expected):
    assert TrainConfig(data=data, eval_data=given).eval_data == expected


# === Collapse guard ===
def test_mean_pairwise_cosine_matches_explicit_loops():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(7, 5)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    pairs = [float(e[i] @ e[j]) for i in range(7) for j in range(7) if i != j]
    assert float(mean_pairwise_cosine(e)) == pytest.approx(np.mean(pairs), abs=1e-6)
    same = np.tile(e[:1], (6, 1))
    assert float(mean_pairwise_cosine(same)) == pytest.approx(1.0, abs=1e-6)


def _constant_model(config):
    """Every image → the same unit vector (the input is scaled by 0: no gradient can make
    the embeddings differ), i.e. a collapsed model."""
    s = config.image_size
    inputs = keras.Input((s, s, 3), dtype="float32")
    x = keras.layers.Rescaling(0.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(config.embedding_dim, bias_initializer="ones")(x)
    return keras.Model(inputs, keras.layers.UnitNormalization()(x))


def _config(model_dir, **kwargs):
    values = dict(
        loss="triplet",
        steps=12,
        image_size=8,
        embedding_dim=8,
        identities_per_batch=4,
        images_per_identity=2,
        model_dir=str(model_dir),
        learning_rate=0.01,
        log_every=1,
        checkpoint_every=100,
    )
    values.update(kwargs)
    return TrainConfig(**values)


def _trainer(config, model):
    data = FixedData(fixed_batches(config.steps, 4, 2, 8, 8), 8)
    return Trainer(
        config,
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=model,
        dataset=data,
        log=lambda *a: None,
    )


def test_collapsed_embeddings_stop_the_run_without_saving(tmp_path):
    """Before the guard, a collapsed run trained to its last step, saved, and exported a
    threshold of 1.0000."""
    trainer = _trainer(_config(tmp_path), _constant_model)
    with pytest.raises(EmbeddingCollapseError, match="Embeddings collapsed") as e:
        trainer.fit()
    assert e.value.step == COLLAPSE_STEPS
    assert "--learning_rate" in str(e.value)
    assert trainer.latest_checkpoint is None
    assert not (tmp_path / "checkpoints").exists() or not any(
        p.name.startswith("ckpt") for p in (tmp_path / "checkpoints").iterdir()
    )


def test_healthy_run_passes_the_guard(tmp_path):
    trainer = _trainer(_config(tmp_path, steps=COLLAPSE_STEPS + 2), tiny_model)
    assert trainer.fit()["final_step"] == COLLAPSE_STEPS + 2


# === BatchNorm ===
def test_frozen_batchnorm_runs_in_inference_mode():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(2, 1)(inputs)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    assert freeze_batchnorm(model) == 1
    images = np.random.default_rng(0).uniform(0, 5, (8, 4, 4, 3)).astype("float32")
    bn = model.layers[2]
    before = np.array(bn.moving_mean.numpy())
    train_out = keras.ops.convert_to_numpy(model(images, training=True))
    infer_out = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(train_out, infer_out, rtol=1e-6)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    assert not bn.trainable_weights


# === Template and threshold source in the export ===
def test_pretrained_run_exports_the_backbones_template():
    """A fine-tuned dlib_resnet_v1 was exported with the ArcFace template."""
    assert pipeline.export_template(TrainConfig(steps=5, **DLIB)) == "dlib"
    assert pipeline.export_template(TrainConfig(steps=5)) == "arcface"


def test_metadata_records_the_threshold_source():
    metadata = model_metadata.build_metadata(
        name="m",
        image_size=150,
        embedding_size=128,
        fingerprint="f",
        threshold=0.8,
        template="dlib",
        threshold_source="--eval_data=split: split of folder:x; 40 pairs",
    )
    checked = model_metadata.check_metadata(metadata, "here")
    assert checked["threshold_source"].startswith("--eval_data=split")
    assert checked["template"]["name"] == "dlib"
    old = model_metadata.build_metadata(
        name="m", image_size=112, embedding_size=8, fingerprint=None
    )
    assert "threshold_source" not in old


# === The evaluation split ===
def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_split_is_identity_disjoint_seeded_and_complete():
    counts = [1, 12, 3, 5, 2, 8, 4, 6, 3, 2, 7, 2, 2, 9, 3, 1, 4, 5, 6, 2, 3, 4, 5, 6, 2]
    labels = _labels(counts)
    a = eval_split.plan_split(labels, seed=3, identities_per_batch=4, data="folder:x")
    b = eval_split.plan_split(labels, seed=3, identities_per_batch=4, data="folder:x")
    np.testing.assert_array_equal(a.eval_indices, b.eval_indices)
    assert len(a.eval_identities) == 5  # 20% of 25
    held = set(labels[a.eval_indices].tolist())
    assert held == set(a.eval_identities.tolist())
    assert not held & set(labels[a.train_indices].tolist())  # identity-disjoint
    assert all(counts[k] >= 2 for k in held)
    # Every image is trained on, paired, or counted as held out unused.
    assert len(a.train_indices) + len(a.eval_indices) + a.unused_images == len(labels)
    other = eval_split.plan_split(labels, seed=4, identities_per_batch=4, data="folder:x")
    assert set(other.eval_identities.tolist()) != held or not np.array_equal(
        other.eval_indices, a.eval_indices
    )


def test_split_caps_images_per_held_out_identity_and_counts_the_rest():
    labels = _labels([30] * 20)
    split = eval_split.plan_split(labels, seed=0, identities_per_batch=4, data="folder:x")
    assert len(split.eval_indices) == 4 * eval_split.MAX_SPLIT_IMAGES_PER_IDENTITY
    assert split.unused_images == 4 * 20
    assert "80 more held out unused" in split.describe("folder:x")


def test_split_pairs_fit_a_small_split():
    labels = _labels([8, 8, 8, 8])
    pairs = eval_split.split_pairs(labels, seed=0)
    assert pairs.num_folds == 2 and len(pairs) == 2 * 2 * 50
    assert pairs.issame.sum() == len(pairs) // 2


def test_too_small_data_is_refused_naming_the_numbers():
    with pytest.raises(ValueError) as e:
        eval_split.plan_split(_labels([3] * 7), seed=0, identities_per_batch=4, data="folder:x")
    message = str(e.value)
    for part in ("7 identities", "7 with >= 2 images", "21 images", "holds out 4", "--eval_data"):
        assert part in message, message


def test_subset_source_reads_the_parents_images_relabelled():
    from tfface import data
    from tfface.data.subset import SubsetSource

    parent = data.load("synthetic:6", image_size=32)
    indices = np.flatnonzero(np.isin(parent.labels, [1, 4]))[::3]
    subset = SubsetSource(parent, indices)
    assert subset.identities == [parent.identities[1], parent.identities[4]]
    batch = tf.data.Dataset.from_tensors(tf.range(len(indices), dtype=tf.int64))
    images, labels = next(iter(subset.images_for_indices(batch)))
    want, want_labels = next(
        iter(parent.images_for_indices(tf.data.Dataset.from_tensors(tf.constant(indices))))
    )
    np.testing.assert_array_equal(images.numpy(), want.numpy())
    np.testing.assert_array_equal(labels.numpy(), (want_labels.numpy() == 4).astype(np.int64))
