"""Bad-input policy: the `BadInputReport` and the cheap image checks that feed it.

Every reader validates what it can *before* a `tf.data` pipeline is built, so a training run
never dies on a broken file halfway through an epoch and never drops one silently:

- `on_bad_image="skip"` (default): the bad file/record is left out of the source, and the
  report lists it with its reason and counts it per reason;
- `on_bad_image="fail"`: the first bad file raises `BadInputError` naming the file and the
  reason.

Images that are readable but not plain RGB JPEG/PNG (grayscale, CMYK, RGBA, palette, a PNG
named `.jpg`) are *kept*: `tf.io.decode_image(channels=3)` sniffs the content and converts
to RGB. They are recorded as notes (`converted_*`, `extension_mismatch`), not as skips.

The header checks read the first bytes (format magic, JPEG SOF / PNG IHDR / BMP / GIF
dimensions) and the last bytes (JPEG EOI marker, PNG IEND chunk) of the encoded image; they
never decode pixels. A full decode pass (`Source.validate_decode()`, used by
`python -m tfface.data inspect`) catches the rest (corrupt entropy-coded data).
"""

import json
import os
import struct

import numpy as np

ON_BAD_IMAGE = ("skip", "fail")

# Reasons an example is left out. Keys are stable: they appear in JSON reports.
SKIP_REASONS = {
    "empty_file": "zero-byte file or record",
    "unreadable": "cannot be read (broken symlink, a directory named like an image, I/O error)",
    "symlink_escape": "symlink resolving outside the dataset root",
    "not_an_image": "content is not a JPEG, PNG, BMP or GIF",
    "corrupt_header": "image header cannot be parsed",
    "truncated": "encoded image ends early (no JPEG EOI / PNG IEND marker)",
    "too_large": "image dimensions exceed max_pixels (checked from the header, before decoding)",
    "decode_error": "tf.io.decode_image failed on the full image",
    "empty_identity": "identity folder/record range holds no usable image",
    "bad_magic": "RecordIO chunk does not start with the magic 0xced7230a",
    "short_read": "record extends past the end of its file",
    "idx_out_of_range": ".idx offset lies outside the .rec file",
    "bad_record": "record framing, CRC, header or tf.train.Example is corrupt",
    "missing_field": "record lacks the image or label field",
}

# Kept examples that were converted or are unusual; counted, never dropped.
NOTE_KINDS = {
    "extension_mismatch": "file extension does not match its content (decoded by content)",
    "converted_grayscale": "1-channel image converted to RGB",
    "converted_gray_alpha": "grayscale+alpha image converted to RGB (alpha dropped)",
    "converted_rgba": "RGBA image converted to RGB (alpha dropped)",
    "converted_cmyk": "CMYK/YCCK JPEG converted to RGB",
    "converted_palette": "palette image converted to RGB",
}

DEFAULT_MAX_PIXELS = 50_000_000


class BadInputError(ValueError):
    """Raised with `on_bad_image="fail"`; names the file/record and the reason."""

    def __init__(self, path, reason, detail=""):
        self.path = path
        self.reason = reason
        self.detail = detail
        text = f"Bad input {path!r}: {reason} ({SKIP_REASONS.get(reason, reason)})"
        if detail:
            text += f": {detail}"
        super().__init__(text + ". Pass on_bad_image='skip' to skip and report such inputs.")


def check_on_bad_image(on_bad_image):
    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(
            f"`on_bad_image` must be one of {ON_BAD_IMAGE}. Received: on_bad_image={on_bad_image!r}"
        )
    return on_bad_image


class BadInputReport:
    """Everything a reader skipped (with reasons) or converted, for one source.

    Args:
        source: the spec or path the report describes.
        on_bad_image: `"skip"` records bad inputs; `"fail"` raises `BadInputError` on the
            first one.

    Example:
    >>> report = BadInputReport("folder:/data")
    >>> report.skip("/data/a/1.jpg", "truncated")
    >>> report.counts
    {'truncated': 1}
    """

    def __init__(self, source="", on_bad_image="skip"):
        self.source = source
        self.on_bad_image = check_on_bad_image(on_bad_image)
        self.skipped = []  # (path, reason, detail)
        self.notes = []  # (path, kind, detail)
        self.ignored = []  # paths that are not images at all (e.g. README.txt, .DS_Store)

    def skip(self, path, reason, detail=""):
        if reason not in SKIP_REASONS:
            raise ValueError(
                f"Unknown skip reason {reason!r}; expected one of {list(SKIP_REASONS)}"
            )
        if self.on_bad_image == "fail":
            raise BadInputError(path, reason, detail)
        self.skipped.append((str(path), reason, str(detail)))

    def note(self, path, kind, detail=""):
        if kind not in NOTE_KINDS:
            raise ValueError(f"Unknown note kind {kind!r}; expected one of {list(NOTE_KINDS)}")
        self.notes.append((str(path), kind, str(detail)))

    def ignore(self, path):
        self.ignored.append(str(path))

    @property
    def counts(self):
        return _count(r for _, r, _ in self.skipped)

    @property
    def note_counts(self):
        return _count(k for _, k, _ in self.notes)

    @property
    def num_skipped(self):
        return len(self.skipped)

    def merge(self, other):
        self.skipped.extend(other.skipped)
        self.notes.extend(other.notes)
        self.ignored.extend(other.ignored)
        return self

    def to_dict(self):
        return {
            "source": self.source,
            "on_bad_image": self.on_bad_image,
            "num_skipped": self.num_skipped,
            "skipped_by_reason": self.counts,
            "notes_by_kind": self.note_counts,
            "skipped": [{"path": p, "reason": r, "detail": d} for p, r, d in self.skipped],
            "notes": [{"path": p, "kind": k, "detail": d} for p, k, d in self.notes],
            "ignored_non_images": list(self.ignored),
        }

    def to_json(self, path):
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
        return path

    def summary(self):
        lines = [f"{self.num_skipped} skipped in {self.source or 'source'}"]
        for reason, n in self.counts.items():
            lines.append(f"  skipped {reason}: {n}")
        for kind, n in self.note_counts.items():
            lines.append(f"  kept, {kind}: {n}")
        if self.ignored:
            lines.append(f"  ignored non-image files: {len(self.ignored)}")
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"BadInputReport(source={self.source!r}, skipped={self.counts}, "
            f"notes={self.note_counts})"
        )


def _count(keys):
    out = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))


class ImageCheckError(Exception):
    """Internal: an encoded image failed a header check (`reason` in SKIP_REASONS)."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# Bytes a header check needs from the start / end of an encoded image. A JPEG SOF can sit
# behind a large EXIF APP1 segment (up to 64 KiB), hence the generous head.
HEAD_BYTES = 1 << 17
TAIL_BYTES = 1024

_EXT_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".bmp": "bmp", ".gif": "gif"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not C4/C8/CC.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def sniff_format(head):
    """Format of an encoded image from its magic bytes, or None."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def _jpeg_header(head):
    """(width, height, components, adobe_transform) from the first SOF marker."""
    i, n = 2, len(head)
    while i < n:
        if head[i] != 0xFF:
            raise ImageCheckError("corrupt_header", f"expected a JPEG marker at byte {i}")
        while i < n and head[i] == 0xFF:
            i += 1
        if i >= n:
            break
        marker = head[i]
        i += 1
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):
            raise ImageCheckError("corrupt_header", "no SOF marker before scan data")
        if i + 2 > n:
            break
        (seglen,) = struct.unpack(">H", head[i : i + 2])
        if seglen < 2:
            raise ImageCheckError("corrupt_header", f"JPEG segment length {seglen} at byte {i}")
        if marker in _SOF:
            if i + 8 > n:
                break
            _, height, width, comps = struct.unpack(">BHHB", head[i + 2 : i + 8])
            return width, height, comps
        i += seglen
    return None  # SOF beyond `head`: the caller retries with the whole image


def image_header(head):
    """(format, width, height, mode) of an encoded image from its first bytes.

    mode is one of "rgb", "grayscale", "gray_alpha", "rgba", "cmyk", "palette". Returns None
    when `head` is too short to reach the dimensions. Raises `ImageCheckError`.
    """
    fmt = sniff_format(head)
    if fmt is None:
        raise ImageCheckError("not_an_image", f"magic bytes {bytes(head[:8]).hex()}")
    if fmt == "jpeg":
        found = _jpeg_header(head)
        if found is None:
            return None
        width, height, comps = found
        mode = {1: "grayscale", 3: "rgb", 4: "cmyk"}.get(comps)
        if mode is None:
            raise ImageCheckError("corrupt_header", f"JPEG with {comps} components")
    elif fmt == "png":
        if len(head) < 33:
            return None
        if head[12:16] != b"IHDR":
            raise ImageCheckError("corrupt_header", "PNG without IHDR chunk")
        width, height, _, color = struct.unpack(">IIBB", head[16:26])
        mode = {0: "grayscale", 2: "rgb", 3: "palette", 4: "gray_alpha", 6: "rgba"}.get(color)
        if mode is None:
            raise ImageCheckError("corrupt_header", f"PNG colour type {color}")
    elif fmt == "bmp":
        width, height = struct.unpack("<ii", head[18:26])
        height = abs(height)
        bits = struct.unpack("<H", head[28:30])[0] if len(head) >= 30 else 24
        mode = {8: "palette", 32: "rgba"}.get(bits, "rgb")
    else:
        if len(head) < 10:
            return None
        width, height = struct.unpack("<HH", head[6:10])
        mode = "palette"
    if width <= 0 or height <= 0:
        raise ImageCheckError("corrupt_header", f"dimensions {width}x{height}")
    return fmt, width, height, mode


def check_tail(fmt, tail):
    """Raises `ImageCheckError("truncated")` when the end-of-image marker is missing.

    Looks for the marker in the last `TAIL_BYTES` rather than at the very end because
    valid files may carry trailing bytes after EOI/IEND.
    """
    marker = {"jpeg": b"\xff\xd9", "png": b"IEND"}.get(fmt)
    if marker is not None and marker not in tail:
        raise ImageCheckError("truncated", f"no {fmt.upper()} end marker in the last bytes")


_MODE_NOTES = {
    "grayscale": "converted_grayscale",
    "gray_alpha": "converted_gray_alpha",
    "rgba": "converted_rgba",
    "cmyk": "converted_cmyk",
    "palette": "converted_palette",
}


def check_encoded(head, tail, size, name="", max_pixels=DEFAULT_MAX_PIXELS):
    """Header checks of one encoded image; returns `(info, notes)`.

    Args:
        head: the first bytes (whole image if shorter than `HEAD_BYTES`).
        tail: the last bytes (up to `TAIL_BYTES`).
        size: total encoded size in bytes.
        name: file name, used to detect an extension that does not match the content.
        max_pixels: largest width*height accepted.

    Returns `info = (format, width, height, mode)` and a list of note kinds. Raises
    `ImageCheckError` with a reason from `SKIP_REASONS`.
    """
    if size == 0:
        raise ImageCheckError("empty_file", "0 bytes")
    info = image_header(head)
    if info is None:
        if len(head) >= size:
            raise ImageCheckError("truncated", "image ends before its dimensions")
        raise ImageCheckError("corrupt_header", f"no dimensions in the first {len(head)} bytes")
    fmt, width, height, mode = info
    if width * height > max_pixels:
        raise ImageCheckError(
            "too_large", f"{width}x{height} = {width * height} pixels > max_pixels={max_pixels}"
        )
    check_tail(fmt, tail)
    notes = []
    ext = os.path.splitext(str(name))[1].lower()
    if ext in _EXT_FORMATS and _EXT_FORMATS[ext] != fmt:
        notes.append("extension_mismatch")
    if mode in _MODE_NOTES:
        notes.append(_MODE_NOTES[mode])
    return info, notes


def check_bytes(data, name="", max_pixels=DEFAULT_MAX_PIXELS):
    """`check_encoded` on a complete in-memory encoded image."""
    data = bytes(data)
    return check_encoded(data[:HEAD_BYTES], data[-TAIL_BYTES:], len(data), name, max_pixels)


def validate_image_args(max_pixels, image_size):
    if max_pixels is not None and (not np.isscalar(max_pixels) or max_pixels <= 0):
        raise ValueError(
            f"`max_pixels` must be a positive number. Received: max_pixels={max_pixels}"
        )
    if image_size is not None and (int(image_size) != image_size or image_size <= 0):
        raise ValueError(
            f"`image_size` must be a positive integer or None. Received: image_size={image_size}"
        )
