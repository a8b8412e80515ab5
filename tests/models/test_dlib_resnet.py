"""dlib_resnet_v1: the reader on the real file, the network, the pretrained registry and cache.

Agreement with dlib itself is tests/models/test_dlib_parity.py (`make parity`); here the
file is read with tfface only.
"""

import os
import warnings

import keras
import numpy as np
import pytest

from tfface import models
from tfface.models import dlib_resnet
from tfface.models import pretrained
from tfface.weights import files
from tfface.weights.dlib_format import DlibFormatError


@pytest.fixture(scope="module")
def dat_bytes():
    path = files.package_file(files.DLIB_PACKAGE, files.DLIB_RESNET_FILE)
    with open(path, "rb") as f:
        return f.read()


def test_reads_the_installed_file(dat_bytes):
    weights = dlib_resnet.read_dlib_resnet(dat_bytes)
    # dlib's input_rgb_image defaults and loss_metric's documented threshold are in the file.
    np.testing.assert_allclose(weights.mean_rgb, (122.782, 117.001, 104.298), atol=1e-4)
    assert weights.image_size == 150
    assert weights.distance_threshold == pytest.approx(0.6)
    convs = [n for n in weights.weights if n.endswith(("conv", "conv1", "conv2"))]
    affines = [n for n in weights.weights if "affine" in n]
    assert len(convs) == len(affines) == 1 + 2 * dlib_resnet.NUM_BLOCKS == 29
    assert weights.weights["stem_conv"][0].shape == (7, 7, 3, 32)
    assert weights.weights["head_fc"][0].shape == (256, 128)
    total = sum(a.size for arrays in weights.weights.values() for a in arrays)
    assert total == models.create_backbone("dlib_resnet_v1", 150, 128).count_params()


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda b: b[: len(b) // 2], "unexpected end of data"),
        (lambda b: b[:4] + b"x" + b[5:], "expected 'loss_metric_2'"),
        (lambda b: b + b"\x00", "trailing bytes"),
    ],
)
def test_damaged_bytes_raise_with_offset(dat_bytes, damage, match):
    with pytest.raises(DlibFormatError, match=match) as info:
        dlib_resnet.read_dlib_resnet(damage(dat_bytes), "model.dat")
    assert "model.dat" in str(info.value) and "at byte" in str(info.value)


def test_damaged_package_file_names_package_and_path(dat_bytes, tmp_path, monkeypatch):
    bad = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    bad.write_bytes(dat_bytes[:1000])
    monkeypatch.setattr(pretrained, "package_file", lambda *args: str(bad))
    with pytest.raises(pretrained.PretrainedWeightsError) as info:
        models.load_pretrained("dlib_resnet_v1", cache=str(tmp_path / "cache"))
    message = str(info.value)
    assert str(bad) in message and "face-recognition-models" in message
    assert "--force-reinstall" in message


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(files.PretrainedWeightsError, match=r"pip install face-recognition"):
        files.package_file(files.DLIB_PACKAGE, files.DLIB_RESNET_FILE, "0.3.0")


def test_cache_is_written_once_then_used(dlib_models, dlib_cache, monkeypatch):
    cached = [f for f in os.listdir(dlib_cache) if f.startswith("dlib_resnet_v1-")]
    assert len(cached) == 1 and cached[0].endswith(".weights.h5")

    def fail(*args, **kwargs):
        raise AssertionError("the cached weights should have been used")

    monkeypatch.setattr(dlib_resnet, "read_dlib_resnet", fail)
    again = models.load_pretrained("dlib_resnet_v1", cache=dlib_cache)
    _assert_same_weights(again, dlib_models[0])


def _assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb) > 0
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)


def test_unreadable_cache_is_reconverted(dlib_models, dlib_cache, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (name,) = os.listdir(dlib_cache)
    (cache / name).write_bytes(b"not hdf5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = models.load_pretrained("dlib_resnet_v1", cache=str(cache))
    assert any("unreadable" in str(w.message) for w in caught)
    _assert_same_weights(model, dlib_models[0])


def test_unit_and_raw_models_and_metadata(dlib_models, astronaut_chip):
    unit, raw = dlib_models
    x = astronaut_chip[None].astype("float32")
    e = keras.ops.convert_to_numpy(unit(x))[0]
    d = keras.ops.convert_to_numpy(raw(x))[0]
    np.testing.assert_allclose(e, d / np.linalg.norm(d), atol=1e-6)
    meta = unit.tfface_metadata
    spec = models.get_pretrained_spec("dlib_resnet_v1")
    assert meta["image_size"] == 150 and meta["embedding_size"] == 128
    assert meta["template"]["name"] == "dlib"
    np.testing.assert_allclose(meta["template"]["points"], models_template(), atol=1e-4)
    assert meta["threshold"] == spec.threshold
    assert raw.tfface_metadata["threshold"] is None
    assert meta["fingerprint"].startswith("sha256:")
    # The threshold is dlib's 0.6 in cosine form for descriptors of the spec's norm.
    r = pretrained.DLIB_MEDIAN_NORM
    u, v = np.array([r, 0.0]), np.array([r * spec.threshold, r * np.sqrt(1 - spec.threshold**2)])
    assert np.linalg.norm(u - v) == pytest.approx(spec.distance_threshold)


def models_template():
    from tfface.align import dlib_template

    return dlib_template(150)


def test_zero_extend_add_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 3, 64)).astype("float32")
    b = rng.normal(size=(2, 4, 4, 32)).astype("float32")
    expected = np.zeros((2, 4, 4, 64), np.float32)
    expected[:, :3, :3, :] += a
    expected[:, :, :, :32] += b
    out = dlib_resnet.ZeroExtendAdd()([a, b])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected, atol=0)


def test_channel_affine_is_the_depthwise_conv_it_replaces():
    """γ·x + β per channel with `DepthwiseConv2D(1)`'s weights, config and variables."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5, 8)).astype("float32")
    conv = keras.layers.DepthwiseConv2D(1, use_bias=True)
    conv.build(x.shape)
    conv.set_weights([rng.normal(size=(1, 1, 8, 1)), rng.normal(size=8)])
    affine = dlib_resnet.ChannelAffine(name="affine")
    affine.build(x.shape)
    affine.set_weights(conv.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(affine(x)), keras.ops.convert_to_numpy(conv(x)), atol=1e-6
    )
    assert [v.name for v in affine.weights] == ["kernel", "bias"]
    again = dlib_resnet.ChannelAffine.from_config(affine.get_config())
    assert again.kernel_size == (1, 1) and again.use_bias
    with pytest.raises(ValueError, match="Received: kernel_size=\\(3, 3\\)"):
        dlib_resnet.ChannelAffine(kernel_size=3)
    with pytest.raises(ValueError, match="Received: use_bias=False"):
        dlib_resnet.ChannelAffine(use_bias=False)


@pytest.mark.tensorflow_only
def test_traced_network_has_no_depthwise_conv():
    """TF 2.21's oneDNN rewrite breaks DepthwiseConv2dNative + BiasAdd + Add + Relu (16
    log lines per trace, "Relu has an empty op name", and an unoptimised graph): every
    residual block ended in that pattern while the affine layers were depthwise convs."""
    import tensorflow as tf

    model = dlib_resnet.dlib_resnet_v1()
    spec = tf.TensorSpec([None, 150, 150, 3], tf.float32)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    ops_ = {op.type for op in graph.get_operations()}
    assert "DepthwiseConv2dNative" not in ops_
    assert {"Conv2D", "Mul", "Relu"} <= ops_


def test_architecture_sizes_follow_dlib():
    # dlib: 150 → conv 72 → max-pool 35 → 17 → 8 → 4 → 2 (the 3×3 block output at 4×4 is
    # zero-extended by add_prev).
    assert dlib_resnet.feature_sizes(150) == [35, 17, 8, 4, 2]
    model = models.create_backbone("dlib_resnet_v1", 150, 128)
    assert tuple(model.get_layer("block11_add").output.shape) == (None, 4, 4, 256)
    assert tuple(model.get_layer("block11_affine2").output.shape) == (None, 3, 3, 256)


@pytest.mark.parametrize("blocks", [0, 2, 14])
def test_trainable_blocks_freeze_the_rest(blocks):
    model = models.create_backbone("dlib_resnet_v1", 103, 128, trainable_blocks=blocks)
    trainable = {v.path.split("/")[0] for v in model.trainable_variables}
    expected = {"head_fc"}
    for i in range(dlib_resnet.NUM_BLOCKS - blocks + 1, dlib_resnet.NUM_BLOCKS + 1):
        expected |= {f"block{i:02d}_{n}" for n in ("conv1", "affine1", "conv2", "affine2")}
    assert trainable == expected
    assert len(model.non_trainable_variables) > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 102}, "too small.*Received: image_size=102"),
        ({"trainable_blocks": 15}, "trainable_blocks.*Received: trainable_blocks=15"),
        ({"trainable_blocks": True}, "trainable_blocks"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.create_backbone("dlib_resnet_v1", **{"image_size": 150, **kwargs})


def test_unknown_pretrained_name():
    with pytest.raises(ValueError, match="Expected one of \\['dlib_resnet_v1'"):
        models.load_pretrained("vggface9")


def test_dlib_image_normalization():
    """dlib's input_rgb_image: (pixel − channel mean) / 256."""
    from tfface.layers import ImageNormalization

    x = np.array([[[[0.0, 128.0, 255.0]]]], np.float32)
    expected = (x - np.array([122.782, 117.001, 104.298])) / 256.0
    out = keras.ops.convert_to_numpy(ImageNormalization("dlib")(x))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert ImageNormalization.from_config(ImageNormalization("dlib").get_config()).mode == "dlib"


def test_pretrained_backbone_for_fine_tuning(dlib_models, dlib_cache):
    backbone, spec = models.load_pretrained_backbone(
        "dlib_resnet_v1", trainable_blocks=1, cache=dlib_cache
    )
    assert (spec.image_size, spec.embedding_dim, spec.normalization) == (150, 128, "dlib")
    assert spec.num_blocks == dlib_resnet.NUM_BLOCKS
    trainable = {v.path.split("/")[0] for v in backbone.trainable_variables}
    assert trainable == {
        "head_fc",
        "block14_conv1",
        "block14_affine1",
        "block14_conv2",
        "block14_affine2",
    }
    _assert_same_weights(backbone, dlib_models[0].get_layer("dlib_resnet_v1"))
    model = models.build_embedding_model(backbone, 150, 128, normalization=spec.normalization)
    x = np.random.default_rng(1).uniform(0, 255, (1, 150, 150, 3)).astype("float32")
    np.testing.assert_allclose(model(x), dlib_models[0](x), atol=1e-6)
