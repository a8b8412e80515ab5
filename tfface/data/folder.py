"""Identity folders: `root/<identity>/<image>` (LFW, CASIA-WebFace, VGGFace2 layout)."""

import concurrent.futures
import os

import numpy as np
import tensorflow as tf

from tfface.data.bad_input import DEFAULT_MAX_PIXELS
from tfface.data.bad_input import HEAD_BYTES
from tfface.data.bad_input import IMAGE_EXTENSIONS
from tfface.data.bad_input import TAIL_BYTES
from tfface.data.bad_input import BadInputReport
from tfface.data.bad_input import ImageCheckError
from tfface.data.bad_input import check_encoded
from tfface.data.bad_input import validate_image_args
from tfface.data.encoded import EncodedSource

# Header checks are I/O bound (two small reads per file); threads overlap the waits.
_SCAN_THREADS = 8


def _check_file(path, real_root, max_pixels):
    """Returns ("ok", (h, w), notes) or ("bad", reason, detail) for one image file."""
    if os.path.islink(path):
        target = os.path.realpath(path)
        if not os.path.exists(target):
            return "bad", "unreadable", f"broken symlink to {os.readlink(path)!r}"
        if os.path.commonpath([real_root, target]) != real_root:
            return "bad", "symlink_escape", f"resolves to {target!r}, outside {real_root!r}"
    if os.path.isdir(path):
        return "bad", "unreadable", "is a directory"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(HEAD_BYTES)
            if size <= HEAD_BYTES:
                tail = head[-TAIL_BYTES:]
            else:
                f.seek(size - TAIL_BYTES)
                tail = f.read(TAIL_BYTES)
    except OSError as e:
        return "bad", "unreadable", f"{type(e).__name__}: {e.strerror or e}"
    try:
        try:
            (_, width, height, _), notes = check_encoded(head, tail, size, path, max_pixels)
        except ImageCheckError as e:
            if e.reason != "corrupt_header" or size <= len(head):
                raise
            # The SOF sits behind more than HEAD_BYTES of metadata: look at the whole file.
            with open(path, "rb") as f:
                head = f.read()
            (_, width, height, _), notes = check_encoded(head, tail, size, path, max_pixels)
    except ImageCheckError as e:
        return "bad", e.reason, e.detail
    except OSError as e:
        return "bad", "unreadable", f"{type(e).__name__}: {e.strerror or e}"
    return "ok", (height, width), notes


def scan_folder(root, report, max_pixels=DEFAULT_MAX_PIXELS, progress=None):
    """Lists and header-checks `root/<identity>/<image>`.

    Returns (paths, labels, identities, image_shapes) for the usable images; everything
    else goes to `report` (which raises on the first bad input when its policy is "fail").
    """
    if not os.path.isdir(root):
        raise ValueError(f"Identity-folder root {root!r} is not a directory.")
    real_root = os.path.realpath(root)
    candidates = []  # (identity, path)
    identity_dirs = []
    for name in sorted(os.listdir(root)):
        full = os.path.join(root, name)
        if not os.path.isdir(full):
            report.ignore(full)
            continue
        if os.path.islink(full):
            target = os.path.realpath(full)
            if os.path.commonpath([real_root, target]) != real_root:
                report.skip(full, "symlink_escape", f"identity folder resolves to {target!r}")
                continue
        identity_dirs.append(name)
        for entry in sorted(os.listdir(full)):
            path = os.path.join(full, entry)
            if entry.lower().endswith(IMAGE_EXTENSIONS):
                candidates.append((name, path))
            else:
                report.ignore(path)

    with concurrent.futures.ThreadPoolExecutor(_SCAN_THREADS) as pool:
        results = pool.map(lambda c: _check_file(c[1], real_root, max_pixels), candidates)
        by_identity = {name: [] for name in identity_dirs}
        shapes = set()
        for (identity, path), (status, a, b) in zip(candidates, results, strict=True):
            if progress is not None:
                progress(1)
            if status == "bad":
                report.skip(path, a, b)
                continue
            for note in b:
                report.note(path, note)
            shapes.add(a)
            by_identity[identity].append(path)

    paths, labels, identities = [], [], []
    for name in identity_dirs:
        if not by_identity[name]:
            report.skip(os.path.join(root, name), "empty_identity", "no usable image")
            continue
        paths.extend(by_identity[name])
        labels.extend([len(identities)] * len(by_identity[name]))
        identities.append(name)
    return paths, np.array(labels, np.int64), identities, shapes


class FolderSource(EncodedSource):
    """Identity-labelled images stored as `root/<identity>/<image>`.

    Identities are the sub-folders in sorted order (label i = i-th kept identity); images
    are the files with a .jpg/.jpeg/.png/.bmp extension (any case), sorted. Every file is
    header-checked on construction (see `tfface.data.bad_input`). Reading in `tf.data` is
    pure TensorFlow: `tf.io.read_file` + `tf.io.decode_image` in a parallel map.

    Args:
        root: the dataset root folder.
        on_bad_image: "skip" (report and leave out) or "fail" (raise `BadInputError`).
        image_size: None, or S to resize every image to S×S when decoding (needed when the
            folder holds images of different sizes and batches are built).
        max_pixels: header-checked size limit; larger images are skipped as "too_large".
        progress: optional callable(n) advanced once per scanned file.

    Example:
    >>> source = FolderSource("/data/lfw")  # doctest: +SKIP
    >>> source.manifest.num_identities  # doctest: +SKIP
    5749
    """

    def __init__(
        self,
        root,
        on_bad_image="skip",
        image_size=None,
        max_pixels=DEFAULT_MAX_PIXELS,
        progress=None,
    ):
        validate_image_args(max_pixels, image_size)  # before a long scan
        report = BadInputReport(f"folder:{root}", on_bad_image)
        paths, labels, identities, shapes = scan_folder(root, report, max_pixels, progress)
        self.root = root
        self.on_bad_image = on_bad_image
        self.paths = np.array(paths, dtype=object)
        super().__init__(
            f"folder:{root}",
            rows=np.arange(len(paths)),
            labels=labels,
            identities=identities,
            report=report,
            image_size=image_size,
            image_shapes=shapes,
            max_pixels=max_pixels,
        )

    def row_name(self, row):
        return self.paths[row]

    def identity_location(self, label):
        return os.path.join(self.root, self.identities[label])

    def read_encoded(self, rows):
        out = []
        for row in rows:
            with open(self.paths[row], "rb") as f:
                out.append(f.read())
        return out

    def element_fn(self, handle):
        return tf.io.read_file(handle)

    def encoded_fn(self):
        paths = tf.constant([str(p) for p in self.paths[self.rows]], dtype=tf.string)

        def fn(indices):
            return tf.gather(paths, indices)

        return fn
