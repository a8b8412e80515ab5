"""Test helpers for the readers: small encoded images and bad-input files in exact form."""

import io
import os
import struct
import zlib

import numpy as np
from PIL import Image


def rgb(seed, height=24, width=24):
    """A smooth random uint8 [H, W, 3] image (compresses like a photo, not like noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def encode(image, fmt="PNG", mode=None, **kwargs):
    im = Image.fromarray(np.asarray(image))
    if mode is not None:
        im = im.convert(mode)
    buffer = io.BytesIO()
    im.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def jpeg(seed, size=24, mode=None):
    return encode(rgb(seed, size, size), "JPEG", mode=mode, quality=95)


def png(seed, size=24, mode=None):
    return encode(rgb(seed, size, size), "PNG", mode=mode)


def truncated_jpeg(seed, size=48):
    data = jpeg(seed, size)
    return data[: len(data) // 2]


def corrupt_huffman_jpeg(seed, size=24):
    """Valid SOF and EOI, but a DHT table libjpeg rejects: passes header checks only."""
    data = bytearray(jpeg(seed, size))
    dht = data.find(b"\xff\xc4")
    data[dht + 5 : dht + 21] = b"\xff" * 16
    return bytes(data)


def _png_chunk(kind, payload):
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def huge_png(width=60_000, height=60_000):
    """A PNG whose IHDR announces width×height (a decompression-bomb header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1))  # one row; decoding would need the rest
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def good_folder(root, identities=("alice", "bob", "carol"), per_identity=3, size=24):
    """root/<identity>/<k>.png with lossless images; returns {path: uint8 image}."""
    images = {}
    for i, name in enumerate(identities):
        for k in range(per_identity):
            image = rgb(100 * i + k, size, size)
            path = write_file(os.path.join(root, name, f"{k}.png"), encode(image, "PNG"))
            images[path] = image
    return images


# name -> (builder(root, outside) returning the bad path, expected reason). Each builds one
# bad entry in exactly the form the issue lists.
def _dir_named_like_image(root, outside):
    path = os.path.join(root, "dave", "folder.jpg")
    os.makedirs(path)
    return path


def _broken_symlink(root, outside):
    path = os.path.join(root, "dave", "gone.jpg")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(os.path.join(root, "does_not_exist.jpg"), path)
    return path


def _escaping_symlink(root, outside):
    target = write_file(os.path.join(outside, "secret.jpg"), jpeg(7))
    path = os.path.join(root, "dave", "escape.jpg")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    return path


BAD_CASES = {
    "truncated_jpeg": (
        lambda root, out: write_file(os.path.join(root, "dave", "t.jpg"), truncated_jpeg(1)),
        "truncated",
    ),
    "zero_byte": (
        lambda root, out: write_file(os.path.join(root, "dave", "z.jpg"), b""),
        "empty_file",
    ),
    "not_an_image": (
        lambda root, out: write_file(os.path.join(root, "dave", "n.jpg"), b"hello, world\n" * 4),
        "not_an_image",
    ),
    "huge_dimensions": (
        lambda root, out: write_file(os.path.join(root, "dave", "h.png"), huge_png()),
        "too_large",
    ),
    "directory_named_like_image": (_dir_named_like_image, "unreadable"),
    "broken_symlink": (_broken_symlink, "unreadable"),
    "symlink_escaping_root": (_escaping_symlink, "symlink_escape"),
}
