"""Image decoding and flip-test-time embedding shared by the LFW and `.bin` evaluations.

`embed_fn` everywhere maps float32 images [N, S, S, 3] with pixel values 0–255 to
embeddings [N, D]. The model does its own pixel normalisation (tfface's
`build_embedding_model` starts with `ImageNormalization("insightface")`, i.e.
((x/255) − 0.5)/0.5, the insightface evaluation pixels), so nothing here rescales pixels.
"""

import io
import os
import sys

import numpy as np

from tfface.unit_vectors import ZeroNormError
from tfface.unit_vectors import l2_normalize_rows


def decode_image(data, image_size=None, source="image"):
    """Decodes encoded image bytes (JPEG/PNG/…) or a file path to RGB uint8 [H, W, 3].

    Args:
        data: bytes, a uint8 array of encoded bytes, or a path.
        image_size: when given and the image is not `image_size` × `image_size`, it is
            resized (bilinear) to that square size.
        source: how errors name the image.
    """
    from PIL import Image

    try:
        if isinstance(data, (str, os.PathLike)):
            img = Image.open(data)
        else:
            img = Image.open(io.BytesIO(bytes(data)))
        img = img.convert("RGB")
    except Exception as e:  # PIL raises several types for corrupt data
        raise ValueError(f"Cannot decode {source}: {type(e).__name__}: {e}") from e
    if image_size is not None and img.size != (image_size, image_size):
        img = img.resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _default_progress(done, total):
    print(f"embedded {done}/{total} images", file=sys.stderr, flush=True)


def embed_images(embed_fn, load_fn, num_images, batch_size=64, flip=True, progress=None):
    """Embeds `num_images` images, optionally as normalise(f(x) + f(flip(x))).

    Args:
        embed_fn: float32 [N, S, S, 3] in 0–255 → embeddings [N, D].
        load_fn: index → uint8 image [S, S, 3].
        num_images: how many images (indices 0 … num_images − 1).
        batch_size: images per `embed_fn` call.
        flip: add the embedding of the horizontally flipped image before normalising
            (insightface's evaluation).
        progress: None (silent), True (a line on stderr about every 10%) or a callable
            `(done, total)` called after each batch.

    Returns:
        float32 L2-normalised embeddings [num_images, D].
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    if progress is True:
        progress = _default_progress
        step = max(1, num_images // 10)
    else:
        step = 1
    out = []
    next_report = step
    for start in range(0, num_images, batch_size):
        stop = min(start + batch_size, num_images)
        x = np.stack([load_fn(i) for i in range(start, stop)]).astype(np.float32)
        e = np.asarray(embed_fn(x), dtype=np.float64)
        if e.ndim != 2 or e.shape[0] != x.shape[0]:
            raise ValueError(
                f"`embed_fn` must map [N, S, S, 3] images to [N, D] embeddings. "
                f"Received output shape {e.shape} for input shape {x.shape}"
            )
        if flip:
            e = e + np.asarray(embed_fn(x[:, :, ::-1, :].copy()), dtype=np.float64)
        out.append(e)
        if progress and (stop >= next_report or stop == num_images):
            progress(stop, num_images)
            next_report = stop + step
    emb = np.concatenate(out) if out else np.zeros((0, 0))
    try:
        return l2_normalize_rows(emb, reject_nonfinite=True).astype(np.float32)
    except ZeroNormError as e:
        bad = e.rows
        raise ValueError(
            f"`embed_fn` returned zero or non-finite embeddings for images {bad[:10].tolist()}"
            f"{' …' if bad.size > 10 else ''} ({bad.size} images)."
        ) from None


def embed_array(embed_fn, images, batch_size=256, flip=False, progress=None):
    """`embed_images` over an in-memory uint8 array [N, S, S, 3] (a `PairSet`'s images)."""
    images = np.asarray(images)
    return embed_images(
        embed_fn,
        lambda i: images[i],
        len(images),
        batch_size=batch_size,
        flip=flip,
        progress=progress,
    )
