"""Fixtures for trainer tests: a tiny model and fixed P×K batches (no data pipeline)."""

import functools

import keras
import numpy as np
import pytest


def tiny_model(config):
    """Conv → GAP → Dense → L2 norm: small enough for exact strategy comparisons.

    No BatchNormalization on purpose: per-replica batch statistics would make MirroredStrategy
    differ from one device, which is what these tests compare.
    """
    s = config.image_size
    inputs = keras.Input((s, s, 3), dtype="float32")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(config.embedding_dim)(x)
    x = keras.layers.UnitNormalization()(x)
    return keras.Model(inputs, x)


def fixed_batches(num_batches, p, k, image_size, num_classes, seed=0):
    """Deterministic (images, labels) global batches: P identities × K images, contiguous."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(num_batches):
        ids = rng.choice(num_classes, size=p, replace=False)
        labels = np.repeat(ids, k).astype(np.int64)
        images = rng.uniform(0, 255, size=(p * k, image_size, image_size, 3)).astype(np.float32)
        batches.append((images, labels))
    return batches


class FixedData(list):
    """A list of batches that also tells the trainer the class count."""

    def __init__(self, batches, num_classes):
        super().__init__(batches)
        self.num_classes = num_classes
        self.num_examples = sum(len(b[1]) for b in batches)


@pytest.fixture
def make_data():
    def make(num_batches=3, p=4, k=2, image_size=8, num_classes=6, seed=0):
        return FixedData(
            fixed_batches(num_batches, p, k, image_size, num_classes, seed), num_classes
        )

    return make


def multi_worker_case(model_dir):
    """Data and config shared by the two-worker run and its one-device reference, so the
    two sides of that comparison cannot drift apart."""
    from tfface.training.schema import TrainConfig

    data = FixedData(fixed_batches(3, 4, 3, 8, 8, seed=0), 8)
    config = TrainConfig(
        loss="triplet",
        mining="semihard",
        mining_scope="global",
        triplet_margin=0.5,
        steps=3,
        image_size=8,
        embedding_dim=8,
        identities_per_batch=4,
        images_per_identity=3,
        model_dir=model_dir,
        optimizer="sgd",
        learning_rate=0.05,
        lr_schedule="constant",
        log_every=1,
    )
    return data, config


@functools.cache
def two_replicas():
    """One MirroredStrategy over the two logical CPU devices, shared by the tests that
    compare against one device (building one per test would pile up collective keys)."""
    from tfface.training.strategy import mirrored_strategy

    return mirrored_strategy(["/cpu:0", "/cpu:1"])
