"""Contract tests over every registered backbone (after timm's `tests/test_models.py`).

Each backbone is built at the smallest cheap input its architecture allows; the checks are
the public contract of `tfface.models`: output shape [N, D] in float32, finite values,
every trainable weight receiving a gradient, config round trip, `.keras` save/reload,
unit-norm embeddings through `build_embedding_model` (behind the backbone's declared input
normalisation) and float32 embeddings under mixed_float16. Each check is one test
parametrised over `list_backbones()`, so a newly registered backbone is covered by all of
them. The expensive cases carry `@pytest.mark.slow` (per check, below); the cheap build +
shape check of every backbone stays in the default run.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfface import models
from tfface.testing import test_case

# Smallest inputs that keep each architecture valid (iresnet/mobilefacenet: multiples of 16;
# inception_resnet_v1: >= 75 for a 1×1 map after reduction B).
SMALL_IMAGE_SIZE = {
    "small_cnn": 32,
    "mobilefacenet": 32,
    "iresnet50": 32,
    "iresnet100": 32,
    "inception_resnet_v1": 75,
    # dlib_resnet_v1's stride-2 convolutions are unpadded: 103 is the smallest valid input.
    "dlib_resnet_v1": 103,
}
BIG = {"iresnet100", "inception_resnet_v1"}
EMBEDDING_DIM = 24


def _params(names, slow=BIG):
    """`names` as pytest params, those in `slow` marked slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


def _images(image_size, n=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n, image_size, image_size, 3)).astype("float32")


def test_every_backbone_has_a_small_size():
    """A newly registered backbone must be added here, so the contract covers it."""
    assert sorted(SMALL_IMAGE_SIZE) == models.list_backbones()


@pytest.mark.parametrize("name", models.list_backbones())
def test_build_and_output_shape(name):
    size = SMALL_IMAGE_SIZE[name]
    model = models.create_backbone(name, image_size=size, embedding_dim=EMBEDDING_DIM)
    assert isinstance(model, keras.Model)
    assert tuple(model.input.shape) == (None, size, size, 3)
    assert tuple(model.output.shape) == (None, EMBEDDING_DIM)
    out = model(_images(size, n=3), training=False)
    assert tuple(out.shape) == (3, EMBEDDING_DIM)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))
    # Different images give different embeddings (the output is not a constant).
    out = keras.ops.convert_to_numpy(out)
    assert np.abs(out[0] - out[1]).max() > 1e-4
    assert model.count_params() > 0


@pytest.mark.parametrize("name", _params(models.list_backbones()))
def test_embedding_dim_changes_only_the_head(name):
    """Doubling D adds exactly the extra head weights: the trunk does not depend on D."""
    size = SMALL_IMAGE_SIZE[name]
    a = models.create_backbone(name, image_size=size, embedding_dim=EMBEDDING_DIM)
    b = models.create_backbone(name, image_size=size, embedding_dim=2 * EMBEDDING_DIM)
    assert tuple(b.output.shape) == (None, 2 * EMBEDDING_DIM)
    assert b.count_params() > a.count_params()
    # Every layer except the final projection and BN has identical weight shapes.
    differing = [
        la.name
        for la, lb in zip(a.layers, b.layers, strict=True)
        if [w.shape for w in la.weights] != [w.shape for w in lb.weights]
    ]
    assert 1 <= len(differing) <= 2, differing


@pytest.mark.parametrize("name", _params(models.list_backbones()))
def test_every_trainable_weight_gets_a_gradient(name):
    size = SMALL_IMAGE_SIZE[name]
    model = models.create_backbone(name, image_size=size, embedding_dim=EMBEDDING_DIM)
    x = tf.constant(_images(size, n=4))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=True)[:, :3])
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads, strict=True) if g is None]
    assert not missing, f"no gradient for {missing}"
    for v, g in zip(model.trainable_variables, grads, strict=True):
        assert np.all(np.isfinite(g.numpy())), v.path


# Backbones whose check is too expensive for the default run, per check. Saving ~24 M
# parameters takes ~15-20 s on 2 busy cores, and the layers involved are the same stock
# layers that mobilefacenet/small_cnn exercise in the default run; dlib_resnet_v1 has 5.6 M
# parameters, and its one custom layer (ZeroExtendAdd) round-trips in the slow run.
SERIALIZATION_SLOW = {"iresnet50", "iresnet100", "inception_resnet_v1", "dlib_resnet_v1"}
EMBEDDING_MODEL_SLOW = BIG
MIXED_PRECISION_SLOW = {"iresnet50", "iresnet100", "inception_resnet_v1", "dlib_resnet_v1"}


@pytest.fixture
def harness():
    """tfface's `TestCase` (numpy asserts, the `.keras` saving round trip) for the
    parametrised contract tests."""
    case = test_case.TestCase()
    case.setUp()
    yield case
    case.tearDown()
    case.doCleanups()


@pytest.mark.parametrize("name", _params(models.list_backbones(), SERIALIZATION_SLOW))
def test_config_round_trip_and_keras_saving(name, harness):
    size = SMALL_IMAGE_SIZE[name]
    model = models.create_backbone(name, image_size=size, embedding_dim=EMBEDDING_DIM)
    x = _images(size)
    expected = model(x, training=False)

    revived = keras.Model.from_config(model.get_config())
    assert [w.shape for w in revived.weights] == [w.shape for w in model.weights]
    revived.set_weights(model.get_weights())
    harness.assertAllClose(revived(x, training=False), expected, atol=0, rtol=0)

    harness.run_model_saving_test(model, x, fresh_process=False)


@pytest.mark.parametrize("name", _params(models.list_backbones(), EMBEDDING_MODEL_SLOW))
def test_embedding_model_gives_unit_embeddings(name, harness):
    """`build_embedding_model(name)`: the backbone's declared normalisation in front, unit
    embeddings out."""
    size = SMALL_IMAGE_SIZE[name]
    model = models.build_embedding_model(name, image_size=size, embedding_dim=EMBEDDING_DIM)
    assert tuple(model.output.shape) == (None, EMBEDDING_DIM)
    assert model.get_layer("normalization").mode == models.backbone_normalization(name)
    pixels = np.random.default_rng(1).uniform(0, 255, size=(3, size, size, 3))
    out = keras.ops.convert_to_numpy(model(pixels.astype("float32"), training=False))
    harness.assertAllClose(np.linalg.norm(out, axis=-1), np.ones(3), atol=1e-5)


@pytest.mark.parametrize("name", _params(models.list_backbones(), MIXED_PRECISION_SLOW))
def test_mixed_precision_embeddings_are_float32(name, harness):
    """Under mixed_float16 the convolutions run in float16 but the embeddings come out in
    float32 and match the float32 model with the same weights to float16 accuracy."""
    size = SMALL_IMAGE_SIZE[name]
    reference = models.create_backbone(name, image_size=size, embedding_dim=EMBEDDING_DIM)
    keras.config.set_dtype_policy("mixed_float16")
    model = models.create_backbone(name, image_size=size, embedding_dim=EMBEDDING_DIM)
    keras.config.set_dtype_policy("float32")
    model.set_weights(reference.get_weights())
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    assert convs[0].compute_dtype == "float16"
    x = _images(size, n=2)
    out = model(x, training=False)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    harness.assertAllFinite(out)
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    scale = np.abs(expected).max()
    harness.assertAllClose(out, expected, atol=0.05 * scale, rtol=0)
