"""`load_image`: any photo a user hands over → uint8 RGB [H, W, 3], or an error naming it.

Accepted: a path (str / os.PathLike), encoded bytes, a PIL image, or a numpy array
(uint8 [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]; float arrays in [0, 1] or [0, 255]).
Modes are normalised the way a viewer shows the picture: EXIF orientation applied,
grayscale repeated to three channels, RGBA / LA / palette-with-transparency composited on
white, CMYK and YCbCr converted by PIL, 16-bit grayscale scaled to 8 bits.
"""

import io
import os

import numpy as np
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

# Decompression-bomb guard: PIL warns above ~89 MP and raises above twice that; a face
# photo past 200 MP is almost certainly a mistake, so refuse it with a clear message.
MAX_PIXELS = 200_000_000


class ImageInputError(ValueError):
    """An input that is not a readable image; the message names the input and the reason."""


def describe(source):
    """A short name for `source` in messages: the path, or the type and size."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array shape={source.shape} dtype={source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL image mode={source.mode} size={source.size}>"
    return f"<{type(source).__name__}>"


def _pil_to_rgb(im):
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(im, dtype=np.float64)
        top = 65535.0 if array.max(initial=0) > 255 else 255.0
        return np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)[:, :, None]
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        # Transparent pixels take a white background, as a viewer shows them; their hidden
        # colour values (often black) would otherwise look like a dark frame to the detector.
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _array_to_rgb(array, name):
    array = np.asarray(array)
    if array.dtype == np.bool_ or array.size == 0:
        raise ImageInputError(f"{name}: not an image array (empty or boolean).")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise ImageInputError(f"{name}: array values must be finite numbers.")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 255.0:
            raise ImageInputError(
                f"{name}: array values must lie in [0, 1] or [0, 255]. Received min={lo}, max={hi}"
            )
        # skimage-style float images live in [0, 1]; anything larger is 0–255 pixels.
        scale = 255.0 if np.issubdtype(array.dtype, np.floating) and hi <= 1.0 else 1.0
        array = np.clip(np.round(array.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 4:
        alpha = array[:, :, 3:].astype(np.float64) / 255.0
        array = np.round(array[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ImageInputError(
            f"{name}: arrays must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]. "
            f"Received shape {array.shape}"
        )
    return array


def load_image(source):
    """Returns `source` as a contiguous uint8 RGB array [H, W, 3].

    Raises:
        ImageInputError: the file is missing or not an image, the bytes do not decode, the
            array has an unusable shape or range, or the image exceeds `MAX_PIXELS`. The
            message starts with the input's name (`describe(source)`).
    """
    name = describe(source)
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise ImageInputError(f"{name}: no such file.")
        opener = lambda: Image.open(source)  # noqa: E731
    elif isinstance(source, (bytes, bytearray, memoryview)):
        opener = lambda: Image.open(io.BytesIO(bytes(source)))  # noqa: E731
    elif isinstance(source, Image.Image):
        opener = None
    elif isinstance(source, np.ndarray):
        array = _array_to_rgb(source, name)
        opener = None
    else:
        raise ImageInputError(
            f"{name}: images must be a path, encoded bytes, a PIL image or a numpy array."
        )
    try:
        if opener is not None:
            with opener() as im:
                if im.size[0] * im.size[1] > MAX_PIXELS:
                    raise ImageInputError(
                        f"{name}: {im.size[0]}x{im.size[1]} pixels exceeds {MAX_PIXELS:,}."
                    )
                array = _pil_to_rgb(im)
        elif isinstance(source, Image.Image):
            array = _pil_to_rgb(source)
    except ImageInputError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as e:
        raise ImageInputError(f"{name}: cannot decode image ({type(e).__name__}: {e})") from e
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageInputError(f"{name}: empty image {array.shape}.")
    return np.ascontiguousarray(array)
