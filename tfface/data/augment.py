"""Batched, stateless, seeded face augmentation in core TensorFlow (no tensorflow-addons).

`augment(images, seed)` applies, per image and vectorised over the batch:
- horizontal flip (probability 0.5),
- one geometric warp combining crop/scale jitter and shift (and the flip), bilinear, with
  zero fill outside the source image: `tf.image.crop_and_resize` when there is no
  rotation (the default), else one `tf.raw_ops.ImageProjectiveTransformV3` call that adds
  a small rotation (`max_rotation` degrees; off by default because it costs ~2.5× more),
- colour jitter: brightness, contrast, saturation and hue (hue as a rotation of the
  chroma plane in YIQ space, so every image gets its own angle in one batched matmul).

Every random draw is a stateless op keyed by `seed` (an int or a [2] int tensor, split
with `tf.random.experimental.stateless_split`): the same seed gives the same pixels, eagerly
and inside `tf.data`. Images are float 0–255 (uint8 is accepted and cast); the result is
float32 0–255. `normalize(images, mode)` maps 0–255 to the network input range.
"""

import math

import tensorflow as tf

NORMALIZATION_MODES = ("insightface", "facenet")

# RGB → YIQ and back (NTSC); hue is the angle in the I–Q plane.
_RGB_TO_YIQ = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
_YIQ_TO_RGB = [[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]]


def normalize(images, mode="insightface"):
    """Maps float 0–255 pixels to network inputs.

    Args:
        images: float (or uint8) tensor of 0–255 pixels, any shape.
        mode: "insightface": ((x / 255) − 0.5) / 0.5, range [−1, 1];
            "facenet": (x − 127.5) / 128 (fixed standardisation of facenet).

    Returns:
        float32 tensor, same shape.
    """
    if mode not in NORMALIZATION_MODES:
        raise ValueError(f"`mode` must be one of {NORMALIZATION_MODES}. Received: mode={mode!r}")
    images = tf.cast(images, tf.float32)
    if mode == "insightface":
        return (images / 255.0 - 0.5) / 0.5
    return (images - 127.5) / 128.0


def _check_range(name, value, low=0.0, high=None):
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"`{name}` must be {bound}. Received: {name}={value!r}")


def _seed_tensor(seed):
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        raise ValueError(f"`seed` must be an integer or an int [2] tensor. Received: {seed!r}")
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.zeros_like(seed)])
    if seed.shape.rank != 1 or (seed.shape[0] is not None and seed.shape[0] != 2):
        raise ValueError(f"`seed` must be an integer or an int [2] tensor. Received: {seed!r}")
    return seed


def augment(
    images,
    seed,
    flip=True,
    max_rotation=0.0,
    scale_range=(0.9, 1.1),
    max_shift=0.06,
    brightness=0.2,
    contrast=0.2,
    saturation=0.2,
    hue=0.05,
):
    """Augments a batch [N, H, W, 3] or a single image [H, W, 3] of float 0–255 pixels.

    Args:
        images: float or uint8 tensor [N, H, W, 3] or [H, W, 3], pixels 0–255.
        seed: int or int [2] tensor; the same seed gives the same output.
        flip: bool, random horizontal flip with probability 0.5.
        max_rotation: degrees; rotation uniform in ±max_rotation (default 0: off; e.g.
            10 turns on the projective-transform path).
        scale_range: (low, high) zoom factors, log-uniform (crop/scale jitter; > 1 zooms
            in, as a random crop resized back would).
        max_shift: shift uniform in ±max_shift × image size, per axis.
        brightness: additive delta uniform in ±brightness × 255.
        contrast: factor uniform in [1 − contrast, 1 + contrast] about each image's mean.
        saturation: factor uniform in [1 − saturation, 1 + saturation] (0 = grey).
        hue: rotation of the chroma plane uniform in ±hue × 2π (hue in [0, 0.5]).

    Returns:
        float32 tensor of the input's shape, pixels clipped to [0, 255].

    Example:

    >>> out = augment(tf.zeros([4, 112, 112, 3]), seed=(1, 2))
    >>> out.shape
    TensorShape([4, 112, 112, 3])
    """
    _check_range("max_rotation", max_rotation, 0.0, 180.0)
    _check_range("max_shift", max_shift, 0.0, 1.0)
    _check_range("brightness", brightness, 0.0, 1.0)
    _check_range("contrast", contrast, 0.0, 1.0)
    _check_range("saturation", saturation, 0.0, 1.0)
    _check_range("hue", hue, 0.0, 0.5)
    if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
        raise ValueError(
            "`scale_range` must be (low, high) with 0 < low <= high. "
            f"Received: scale_range={scale_range!r}"
        )
    images = tf.convert_to_tensor(images)
    if images.shape.rank not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(
            "`images` must be [N, H, W, 3] or [H, W, 3]. "
            f"Received: images with shape {images.shape}"
        )
    unbatched = images.shape.rank == 3
    if unbatched:
        images = images[None]
    if images.dtype != tf.uint8:
        images = tf.cast(images, tf.float32)
    seeds = tf.random.experimental.stateless_split(_seed_tensor(seed), num=8)
    n = tf.shape(images)[0]
    # crop_and_resize reads uint8 directly and returns float32: one pass fewer.
    images = _geometry(images, seeds, n, flip, max_rotation, scale_range, max_shift)
    images = tf.cast(images, tf.float32)
    images = _colour(images, seeds, n, brightness, contrast, saturation, hue)
    images = tf.clip_by_value(images, 0.0, 255.0)
    return images[0] if unbatched else images


def _uniform(seed, n, low, high):
    return tf.random.stateless_uniform([n], seed=seed, minval=low, maxval=high)


def _geometry(images, seeds, n, flip, max_rotation, scale_range, max_shift):
    if not flip and max_rotation == 0 and max_shift == 0 and tuple(scale_range) == (1, 1):
        return images
    if max_rotation > 0:
        images = tf.cast(images, tf.float32)
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)
    log_s = _uniform(seeds[1], n, math.log(scale_range[0]), math.log(scale_range[1]) + 1e-12)
    inv_scale = tf.exp(-log_s)
    tx = _uniform(seeds[2], n, -max_shift, max_shift) * w
    ty = _uniform(seeds[3], n, -max_shift, max_shift) * h
    if flip:
        mirror = tf.where(_uniform(seeds[4], n, 0.0, 1.0) < 0.5, -1.0, 1.0)
    else:
        mirror = tf.ones([n])
    if max_rotation == 0:
        # Without rotation the warp is an axis-aligned box: crop_and_resize samples it
        # (a box with x1 > x2 mirrors) about 2.5× faster than the projective transform.
        # Box coordinates are fractions of (size − 1), matching the pixel mapping below.
        half_x, half_y = 0.5 * inv_scale * mirror, 0.5 * inv_scale
        cx, cy = 0.5 - tx / (w - 1.0), 0.5 - ty / (h - 1.0)
        boxes = tf.stack([cy - half_y, cx - half_x, cy + half_y, cx + half_x], axis=1)
        size = tf.shape(images)[1:3]
        return tf.image.crop_and_resize(images, boxes, tf.range(n), size, extrapolation_value=0.0)
    angle = _uniform(seeds[0], n, -1.0, 1.0) * (max_rotation * math.pi / 180.0)
    # The transform maps output pixel (x, y) to the input pixel it samples:
    # p_in = c + A (p_out − c) − t, with A = R(θ) · diag(mirror, 1) / scale.
    cos, sin = tf.cos(angle) * inv_scale, tf.sin(angle) * inv_scale
    a0, a1 = cos * mirror, -sin
    b0, b1 = sin * mirror, cos
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    a2 = cx - a0 * cx - a1 * cy - tx
    b2 = cy - b0 * cx - b1 * cy - ty
    zeros = tf.zeros([n])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _colour(images, seeds, n, brightness, contrast, saturation, hue):
    if brightness == 0 and contrast == 0 and saturation == 0 and hue == 0:
        return images
    # brightness (x + δ), contrast about the image mean (f·(x − μ) + μ) and saturation/hue
    # (a 3×3 chroma matrix M) are all affine, so they fuse into one per-image transform
    # x ↦ f·M·x + M·(δ + (1 − f)·μ): one reduction and one batched matmul per batch.
    zero, one = tf.zeros([n]), tf.ones([n])
    delta = _uniform(seeds[5], n, -brightness, brightness) * 255.0 if brightness > 0 else zero
    f = _uniform(seeds[6], n, 1.0 - contrast, 1.0 + contrast) if contrast > 0 else one
    if saturation == 0 and hue == 0:
        # M = I: a per-image scale and offset, no channel mixing (about 4× cheaper).
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        bias = delta[:, None, None, None] + (1.0 - f)[:, None, None, None] * mean
        return images * f[:, None, None, None] + bias
    sat_seed, hue_seed = tf.unstack(tf.random.experimental.stateless_split(seeds[7], 2))
    s = _uniform(sat_seed, n, 1.0 - saturation, 1.0 + saturation) if saturation > 0 else one
    phi = _uniform(hue_seed, n, -hue, hue) * (2.0 * math.pi) if hue > 0 else zero
    # M = YIQ→RGB · diag(1, s·R(φ)) · RGB→YIQ: scales and rotates the chroma (I, Q) plane.
    c, si = s * tf.cos(phi), s * tf.sin(phi)
    middle = tf.reshape(tf.stack([one, zero, zero, zero, c, -si, zero, si, c], axis=1), [n, 3, 3])
    m = tf.constant(_YIQ_TO_RGB) @ middle @ tf.constant(_RGB_TO_YIQ)  # [N, 3, 3]
    shape = tf.shape(images)
    flat = tf.reshape(images, [n, -1, 3])
    mean = tf.reduce_mean(flat, axis=1)  # [N, 3]
    bias = delta[:, None] + (1.0 - f)[:, None] * mean
    bias = tf.linalg.matvec(m, bias)  # [N, 3]
    out = tf.einsum("npc,ndc->npd", flat, m * f[:, None, None]) + bias[:, None, :]
    return tf.reshape(out, shape)
