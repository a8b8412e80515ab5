"""Tests for tfface.data.augment: each op eagerly and inside tf.data, batched and unbatched."""

import numpy as np
import pytest
import tensorflow as tf

from tfface.data.augment import augment
from tfface.data.augment import normalize

NO_AUG = dict(
    flip=False,
    max_rotation=0.0,
    scale_range=(1.0, 1.0),
    max_shift=0.0,
    brightness=0.0,
    contrast=0.0,
    saturation=0.0,
    hue=0.0,
)

# One configuration per op (everything else off), plus everything on.
OPS = {
    "flip": dict(NO_AUG, flip=True),
    "rotation": dict(NO_AUG, max_rotation=15.0),
    "scale": dict(NO_AUG, scale_range=(0.8, 1.25)),
    "shift": dict(NO_AUG, max_shift=0.1),
    "brightness": dict(NO_AUG, brightness=0.3),
    "contrast": dict(NO_AUG, contrast=0.4),
    "saturation": dict(NO_AUG, saturation=0.5),
    "hue": dict(NO_AUG, hue=0.2),
    "all": {},
    "all_with_rotation": dict(max_rotation=10.0),
}


def _images(n=4, size=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("op", sorted(OPS))
def test_eager_equals_tf_data_and_is_deterministic(op):
    images = _images()
    kwargs = OPS[op]
    eager = augment(images, seed=(3, 4), **kwargs).numpy()
    again = augment(images, seed=(3, 4), **kwargs).numpy()
    np.testing.assert_array_equal(eager, again)
    ds = tf.data.Dataset.from_tensors(images).map(lambda x: augment(x, seed=(3, 4), **kwargs))
    in_data = next(iter(ds)).numpy()
    np.testing.assert_allclose(in_data, eager, atol=1e-3)
    other = augment(images, seed=(3, 5), **kwargs).numpy()
    if op != "flip":  # four coin flips can coincide; the other ops draw continuous values
        assert not np.allclose(other, eager)
    assert eager.dtype == np.float32 and eager.shape == images.shape
    assert eager.min() >= 0 and eager.max() <= 255


@pytest.mark.parametrize("op", sorted(OPS))
def test_unbatched_matches_batch_of_one(op):
    image = _images(1)[0]
    single = augment(image, seed=7, **OPS[op]).numpy()
    batched = augment(image[None], seed=7, **OPS[op]).numpy()[0]
    assert single.shape == image.shape
    np.testing.assert_allclose(single, batched, atol=1e-4)
    ds = tf.data.Dataset.from_tensor_slices(image[None]).map(lambda x: augment(x, 7, **OPS[op]))
    np.testing.assert_allclose(next(iter(ds)).numpy(), single, atol=1e-3)


def test_everything_off_is_identity_and_uint8_is_accepted():
    images = _images()
    np.testing.assert_allclose(augment(images, 0, **NO_AUG).numpy(), images, atol=1e-4)
    as_uint8 = images.astype(np.uint8)
    out = augment(as_uint8, 0, **NO_AUG)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), as_uint8.astype(np.float32), atol=1e-4)


def test_flip_is_an_exact_mirror_per_image():
    images = _images(n=32)
    out = augment(images, seed=1, **OPS["flip"]).numpy()
    flipped = [np.allclose(o, x[:, ::-1], atol=1e-3) for o, x in zip(out, images, strict=True)]
    kept = [np.allclose(o, x, atol=1e-3) for o, x in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 4 <= sum(flipped) <= 28  # both outcomes occur


def test_rotation_moves_an_off_centre_dot_around_the_centre():
    image = np.zeros((1, 41, 41, 3), np.float32)
    image[0, 20, 35] = 255.0  # 15 px right of the centre
    out = augment(np.repeat(image, 16, 0), seed=2, **dict(NO_AUG, max_rotation=30.0)).numpy()
    for o in out:
        ys, xs = np.nonzero(o[..., 0] > 1)
        w = o[ys, xs, 0]
        cy, cx = np.sum(ys * w) / w.sum(), np.sum(xs * w) / w.sum()
        radius = np.hypot(cy - 20, cx - 20)
        assert abs(radius - 15) < 1.0  # rotation keeps the distance to the centre
        assert abs(np.degrees(np.arctan2(cy - 20, cx - 20))) <= 31


def test_crop_path_matches_the_projective_path_at_zero_rotation():
    """Without rotation the warp is the separable row/column gather; with a vanishing
    rotation the same seeds give the same flip/scale/shift through
    ImageProjectiveTransformV3."""
    images = _images(n=8, size=32)
    geometry = dict(NO_AUG, flip=True, scale_range=(0.8, 1.25), max_shift=0.1)
    crop = augment(images, seed=9, **geometry).numpy()
    warp = augment(images, seed=9, **dict(geometry, max_rotation=1e-6)).numpy()
    # Compare where every sample lies inside the source (the paths treat the edge pixel
    # slightly differently).
    np.testing.assert_allclose(crop[:, 8:24, 8:24], warp[:, 8:24, 8:24], atol=0.5)
    assert np.abs(crop - images).max() > 10  # the warp did something


def test_colour_ops_keep_grey_pixels_grey_for_saturation_and_hue():
    grey = np.full((8, 6, 6, 3), 100.0, np.float32)
    out = augment(grey, seed=3, **dict(NO_AUG, saturation=0.5, hue=0.3)).numpy()
    np.testing.assert_allclose(out, grey, atol=1e-2)
    out = augment(grey, seed=3, **dict(NO_AUG, brightness=0.2)).numpy()
    delta = out[:, 0, 0, 0] - 100.0
    assert np.all(np.abs(delta) <= 0.2 * 255 + 1e-3) and np.std(delta) > 1


def test_hue_rotation_changes_colour_but_keeps_luma():
    images = _images(n=8)
    out = augment(images, seed=4, **dict(NO_AUG, hue=0.25)).numpy()
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    inside = (out > 0.5).all(-1) & (out < 254.5).all(-1)  # unclipped pixels
    np.testing.assert_allclose((out @ luma)[inside], (images @ luma)[inside], atol=0.05)
    assert not np.allclose(out, images)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_rotation=-1), "max_rotation"),
        (dict(hue=0.6), "hue"),
        (dict(brightness=2.0), "brightness"),
        (dict(scale_range=(1.2, 0.8)), "scale_range"),
        (dict(max_shift=-0.1), "max_shift"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment(_images(), 0, **kwargs)


def test_bad_shapes_and_seeds_raise():
    with pytest.raises(ValueError, match="images"):
        augment(np.zeros((4, 8, 8), np.float32), 0)
    with pytest.raises(ValueError, match="seed"):
        augment(_images(), seed=0.5)
    with pytest.raises(ValueError, match="seed"):
        augment(_images(), seed=[1, 2, 3])


def test_normalize_modes():
    x = tf.constant([0.0, 127.5, 255.0])
    np.testing.assert_allclose(normalize(x, "insightface").numpy(), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(normalize(x, "facenet").numpy(), [-127.5 / 128, 0.0, 127.5 / 128])
    assert normalize(tf.constant([255], tf.uint8)).dtype == tf.float32
    with pytest.raises(ValueError, match="mode"):
        normalize(x, "imagenet")


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_uint8_input_matches_float_input(interpolation):
    """uint8 bilinear rounds its vertical pass and its result to uint8 (≤ 1 grey level in
    all); nearest copies pixels exactly."""
    images = _images(n=8, size=32).astype(np.uint8)
    geometry = dict(NO_AUG, flip=True, scale_range=(0.8, 1.25), max_shift=0.1)
    kwargs = dict(geometry, interpolation=interpolation)
    as_uint8 = augment(images, seed=5, **kwargs).numpy()
    as_float = augment(images.astype(np.float32), seed=5, **kwargs).numpy()
    atol = 1.0 + 1e-3 if interpolation == "bilinear" else 1e-4
    np.testing.assert_allclose(as_uint8, as_float, atol=atol)
    assert np.abs(as_float - images).max() > 10  # the warp did something


def test_nearest_copies_source_pixels_and_bad_interpolation_raises():
    images = _images(n=8, size=32).astype(np.uint8).astype(np.float32)
    out = augment(
        images,
        seed=6,
        **dict(NO_AUG, scale_range=(0.8, 1.25), max_shift=0.1),
        interpolation="nearest",
    ).numpy()
    for o, x in zip(out, images, strict=True):
        source = set(map(tuple, x.reshape(-1, 3))) | {(0.0, 0.0, 0.0)}  # zero fill
        assert set(map(tuple, o.reshape(-1, 3))) <= source
    with pytest.raises(ValueError, match="interpolation"):
        augment(images, 0, interpolation="bicubic")


def test_uint8_default_path_is_deterministic_in_tf_data():
    images = _images(n=4, size=24).astype(np.uint8)
    eager = augment(images, seed=(8, 9)).numpy()
    np.testing.assert_array_equal(eager, augment(images, seed=(8, 9)).numpy())
    ds = tf.data.Dataset.from_tensors(images).map(lambda x: augment(x, seed=(8, 9)))
    np.testing.assert_allclose(next(iter(ds)).numpy(), eager, atol=1e-3)
    assert eager.dtype == np.float32 and 0 <= eager.min() and eager.max() <= 255
