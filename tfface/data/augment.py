"""Batched, stateless, seeded face augmentation in core TensorFlow (no tensorflow-addons).

`augment(images, seed)` applies, per image and vectorised over the batch:
- horizontal flip (probability 0.5),
- one geometric warp combining crop/scale jitter and shift (and the flip), bilinear by
  default (`interpolation="nearest"` is cheaper), with zero fill outside the source image.
  Without rotation (the default) the warp is separable: whole source rows are gathered,
  then the column taps are blended in one XLA-compiled loop. With `max_rotation > 0` one
  `tf.raw_ops.ImageProjectiveTransformV3` call adds a small rotation (opt-in: it costs
  several times more),
- colour jitter: brightness, contrast, saturation and hue (hue as a rotation of the
  chroma plane in YIQ space), fused with the clip into one per-image affine map evaluated
  in one XLA-compiled loop.

Every random draw is a stateless op keyed by `seed` (an int or a [2] int tensor, split
with `tf.random.experimental.stateless_split`): the same seed gives the same pixels, eagerly
and inside `tf.data`. Images are float 0–255 or uint8; the result is float32 0–255. uint8
input stays uint8 through the warp (bilinear rounds its vertical pass and its result to
whole grey levels, ≤ 1 level in all, as PIL's separable resize does); float input is
warped in float32. `normalize(images, mode)` maps 0–255 to the network input range.
"""

import math

import tensorflow as tf

NORMALIZATION_MODES = ("insightface", "facenet")
INTERPOLATIONS = ("bilinear", "nearest")

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
    interpolation="bilinear",
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
        interpolation: "bilinear" (default) or "nearest" for the geometric warp;
            "nearest" resamples uint8 input about 2× faster and copies pixels
            instead of blending them.

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
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {INTERPOLATIONS}. "
            f"Received: interpolation={interpolation!r}"
        )
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
    colour = _colour_params(seeds, n, brightness, contrast, saturation, hue)
    geometry = flip or max_rotation > 0 or max_shift > 0 or tuple(scale_range) != (1, 1)
    if geometry:
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
    if geometry and max_rotation == 0:
        images = _warp_and_colour(images, inv_scale, mirror, tx, ty, colour, interpolation)
    else:
        if geometry:
            angle = _uniform(seeds[0], n, -1.0, 1.0) * (max_rotation * math.pi / 180.0)
            images = _rotate(images, angle, inv_scale, mirror, tx, ty, interpolation)
        images = _colour_and_clip(images, *colour)
    return images[0] if unbatched else images


def _uniform(seed, n, low, high):
    return tf.random.stateless_uniform([n], seed=seed, minval=low, maxval=high)


def _colour_params(seeds, n, brightness, contrast, saturation, hue):
    """(delta, f, s·cos φ, s·sin φ, chroma, enabled) of the per-image colour transform."""
    zero, one = tf.zeros([n]), tf.ones([n])
    enabled = brightness > 0 or contrast > 0 or saturation > 0 or hue > 0
    delta = _uniform(seeds[5], n, -brightness, brightness) * 255.0 if brightness > 0 else zero
    f = _uniform(seeds[6], n, 1.0 - contrast, 1.0 + contrast) if contrast > 0 else one
    chroma = saturation > 0 or hue > 0
    if not chroma:
        return delta, f, one, zero, False, enabled
    sat_seed, hue_seed = tf.unstack(tf.random.experimental.stateless_split(seeds[7], 2))
    s = _uniform(sat_seed, n, 1.0 - saturation, 1.0 + saturation) if saturation > 0 else one
    phi = _uniform(hue_seed, n, -hue, hue) * (2.0 * math.pi) if hue > 0 else zero
    return delta, f, s * tf.cos(phi), s * tf.sin(phi), True, enabled


def _axis_taps(size, scale, shift, interpolation):
    """Source rows (or columns) and weights along one axis: [N, size] each, per tap.

    Output pixel p samples p_in = c + scale·(p − c) − shift, c = (size − 1)/2 (the
    mapping of an axis-aligned `crop_and_resize` box; scale < 0 mirrors). Taps that fall
    outside the image get weight 0 (zero fill) and a clamped, valid index."""
    c = (tf.cast(size, tf.float32) - 1.0) / 2.0
    p = c + scale[:, None] * (tf.range(size, dtype=tf.float32)[None] - c) - shift[:, None]
    if interpolation == "nearest":
        starts, weights = [tf.round(p)], [tf.ones_like(p)]
    else:
        p0 = tf.floor(p)
        starts, weights = [p0, p0 + 1.0], [1.0 - (p - p0), p - p0]
    limit = tf.cast(size, tf.float32) - 1.0
    indices = [tf.cast(tf.clip_by_value(q, 0.0, limit), tf.int32) for q in starts]
    weights = [
        tf.where((q >= 0.0) & (q <= limit), wt, 0.0) for q, wt in zip(starts, weights, strict=True)
    ]
    return indices, weights


def _warp_and_colour(images, inv_scale, mirror, tx, ty, colour, interpolation):
    # Flip + scale + shift is separable: output row y reads source rows y0(y), y1(y) and
    # output column x reads source columns x0(x), x1(x). Gathering whole rows is a memcpy
    # (~6 µs per 112×112 uint8 image); the column taps and the blend run as one XLA-fused
    # loop, the colour transform and clip as another. Together they measured ~5× less CPU
    # than crop_and_resize + unfused colour ops (see BUILD_NOTES.md, Data).
    rows, row_w = _axis_taps(tf.shape(images)[1], inv_scale, ty, interpolation)
    cols, col_w = _axis_taps(tf.shape(images)[2], inv_scale * mirror, tx, interpolation)
    gathered = [tf.gather(images, r, axis=1, batch_dims=1) for r in rows]
    if len(gathered) == 2 and images.dtype == tf.uint8:
        # Bilinear on uint8: the vertical pass is blended and rounded back to uint8 first,
        # as PIL's separable resize does (≤ 0.5 grey level of rounding); XLA then reads
        # 2 uint8 column taps instead of 4 (measured ~1.5× less CPU for the warp).
        gathered, row_w = [_blend_rows(gathered, row_w)], [tf.ones_like(row_w[0])]
    out = _fused_warp(gathered, row_w, cols, col_w)
    # The colour pass is a second XLA call on the warped pixels (uint8 when the input is):
    # fused into the warp, every output channel re-gathered all three input channels
    # (3× the column taps); materialising uint8 in between measured ~20 % less CPU.
    return _colour_and_clip(out, *colour)


@tf.function(jit_compile=True, reduce_retracing=True)
def _blend_rows(rows, row_w):
    blended = tf.add_n(
        [tf.cast(r, tf.float32) * w[:, :, None, None] for r, w in zip(rows, row_w, strict=True)]
    )
    return tf.cast(tf.round(blended), tf.uint8)  # convex weights: stays within [0, 255]


@tf.function(jit_compile=True, reduce_retracing=True)
def _fused_warp(rows, row_w, cols, col_w):
    out = 0.0
    for r, wr in zip(rows, row_w, strict=True):
        for c, wc in zip(cols, col_w, strict=True):
            taps = tf.cast(tf.gather(r, c, axis=2, batch_dims=1), tf.float32)
            out += taps * (wr[:, :, None] * wc[:, None, :])[..., None]
    if rows[0].dtype == tf.uint8:
        # Rounded back to uint8 for the colour pass (see _warp_and_colour).
        return tf.cast(tf.round(out), tf.uint8)
    return out


@tf.function(jit_compile=True, reduce_retracing=True)
def _colour_and_clip(images, delta, f, s_cos, s_sin, chroma, enabled):
    images = tf.cast(images, tf.float32)
    return _colour_math(images, _grid_mean(images), delta, f, s_cos, s_sin, chroma, enabled)


def _grid_mean(images):
    # Mean over a 1-in-16 pixel grid (every 4th row and column): the same statistic up
    # to sampling noise at a sixteenth of the reads. [N, 3] float32.
    return tf.reduce_mean(tf.cast(images[:, ::4, ::4, :], tf.float32), axis=[1, 2])


def _chroma_basis():
    # M = YIQ→RGB · diag(1, s·R(φ)) · RGB→YIQ = A + s·cos φ · B + s·sin φ · C: the chroma
    # matrix as a linear combination of three constant matrices (no per-image matmuls).
    y2r, r2y = tf.constant(_YIQ_TO_RGB), tf.constant(_RGB_TO_YIQ)
    a = tf.tensordot(y2r[:, 0], r2y[0], axes=0)
    b = tf.tensordot(y2r[:, 1], r2y[1], axes=0) + tf.tensordot(y2r[:, 2], r2y[2], axes=0)
    c = tf.tensordot(y2r[:, 2], r2y[1], axes=0) - tf.tensordot(y2r[:, 1], r2y[2], axes=0)
    return a, b, c


def _colour_math(images, mean, delta, f, s_cos, s_sin, chroma, enabled):
    # brightness (x + δ), contrast about the image mean (f·(x − μ) + μ) and saturation/hue
    # (a 3×3 chroma matrix M) are all affine, so they fuse into one per-image transform
    # x ↦ f·M·x + M·(δ + (1 − f)·μ). Unfused this was ~6 passes over float pixels (a
    # batched 3×3 matmul that Eigen runs slowly with K = 3, mean, bias, clip) and cost
    # more than a JPEG decode; under XLA it is one loop plus a small reduction.
    if not enabled:
        return tf.clip_by_value(images, 0.0, 255.0)
    if chroma:
        a, b, c = _chroma_basis()
        m = a + s_cos[:, None, None] * b + s_sin[:, None, None] * c  # [N, 3, 3]
    else:
        m = tf.eye(3, batch_shape=[tf.shape(images)[0]])
    bias = tf.linalg.matvec(m, delta[:, None] + (1.0 - f)[:, None] * mean)  # [N, 3]
    mf = (m * f[:, None, None])[:, None, None]  # [N, 1, 1, 3 (out), 3 (in)]
    out = (
        images[..., 0:1] * mf[..., 0]
        + images[..., 1:2] * mf[..., 1]
        + images[..., 2:3] * mf[..., 2]
        + bias[:, None, None, :]
    )
    return tf.clip_by_value(out, 0.0, 255.0)


def _rotate(images, angle, inv_scale, mirror, tx, ty, interpolation):
    images = tf.cast(images, tf.float32)
    n = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)
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
        interpolation=interpolation.upper(),
        fill_mode="CONSTANT",
    )
