"""Shared machinery of the readers whose examples are encoded images (folder, tfrecord, rec).

An `EncodedSource` keeps, per example, a "row" (the reader's own handle: a path, a record
offset, ...) and an int64 label. Subclasses implement `read_encoded(rows)` (Python random
access, used by `convert` and the full decode pass) and may override `encoded_fn()` (the
`tf.data` step turning a batch of example indices into encoded bytes). Decoding happens in a
parallel `tf.data` map with `tf.io.decode_image(channels=3)` so that grayscale, CMYK, RGBA and
palette images come out RGB.
"""

import numpy as np
import tensorflow as tf

from tfface.data.bad_input import DEFAULT_MAX_PIXELS
from tfface.data.bad_input import BadInputReport
from tfface.data.bad_input import validate_image_args
from tfface.data.source import Source

# Example indices read per `read_encoded` call in `dataset()`: amortises the Python call.
READ_CHUNK = 64


def decode_rgb(encoded, image_size=None):
    """uint8 [H, W, 3] from encoded JPEG/PNG/BMP/GIF bytes; resized to S×S if `image_size`."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    if image_size is None:
        return image
    size = tf.constant([image_size, image_size], tf.int32)

    def resize():
        resized = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    image = tf.cond(tf.reduce_all(tf.shape(image)[:2] == size), lambda: image, resize)
    image.set_shape([image_size, image_size, 3])
    return image


class EncodedSource(Source):
    """Base of the encoded-image readers; see the module docstring.

    Args:
        name: the spec this source was loaded from (used in reports and errors).
        rows: int64 [N] reader handles of the kept examples (meaning is per subclass).
        labels: int64 [N] contiguous labels in [0, len(identities)).
        identities: identity names, indexed by label.
        report: the `BadInputReport` of the scan.
        image_size: None (decode at stored size) or S (resize every image to S×S).
        image_shapes: set of (H, W) seen by the header scan, or None when unknown.
        max_pixels: the header size limit used by the scan.
    """

    def __init__(
        self,
        name,
        rows,
        labels,
        identities,
        report,
        image_size=None,
        image_shapes=None,
        max_pixels=DEFAULT_MAX_PIXELS,
    ):
        validate_image_args(max_pixels, image_size)
        self.name = name
        self.rows = np.asarray(rows, np.int64)
        self.labels = np.asarray(labels, np.int64)
        self.identities = list(identities)
        self.report = report if report is not None else BadInputReport(name)
        self.image_size = None if image_size is None else int(image_size)
        self.image_shapes = image_shapes
        self.max_pixels = max_pixels
        if len(self.rows) != len(self.labels):
            raise ValueError(f"{name}: {len(self.rows)} rows but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(identities)):
            raise ValueError(f"{name}: labels outside [0, {len(identities)})")

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.name!r}, examples={self.num_examples}, "
            f"identities={len(self.identities)}, skipped={self.report.num_skipped})"
        )

    # --- subclass interface -------------------------------------------------------------

    def read_encoded(self, rows):
        """List of encoded image bytes for the given rows (Python, random access)."""
        raise NotImplementedError

    def row_name(self, row):
        """Human-readable name of one row (a path, `file.rec@offset`, ...)."""
        return f"{self.name}#{row}"

    def element_fn(self, handle):
        """tf function on one element of `encoded_fn`'s output → encoded bytes (scalar)."""
        return handle

    def identity_location(self, label):
        """Where identity `label` lives, for reports."""
        return f"{self.name}#identity={self.identities[label]}"

    def encoded_fn(self):
        """tf function: int64 example indices [N] → string [N] handles for `element_fn`.

        The default reads the encoded bytes with one `tf.numpy_function` call per batch
        (positional reads, so concurrent calls are safe); decoding stays in TensorFlow.
        """
        rows = tf.constant(self.rows)

        def read(batch_rows):
            return np.array(self.read_encoded(batch_rows), dtype=object)

        def fn(indices):
            batch_rows = tf.gather(rows, indices)
            encoded = tf.numpy_function(read, [batch_rows], tf.string, stateful=False)
            encoded.set_shape(indices.shape)
            return encoded

        return fn

    # --- Source API ---------------------------------------------------------------------

    def _decode_batches(self, ds):
        """(encoded [N], labels [N]) batches → (uint8 [N, H, W, 3], int64 [N]) batches."""
        image_size = self.image_size
        element_fn = self.element_fn

        def decode(handle, label):
            return decode_rgb(element_fn(handle), image_size), label

        n = ds.element_spec[1].shape[0]
        if n is not None:
            # Static batch size: one flat parallel map keeps every core busy across batches.
            return (
                ds.unbatch()
                .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .batch(n)
            )
        return ds.flat_map(
            lambda e, lab: (
                tf.data.Dataset.from_tensor_slices((e, lab))
                .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .batch(tf.size(lab, out_type=tf.int64))
            )
        )

    def _check_batchable(self):
        if self.image_size is None and self.image_shapes is not None and len(self.image_shapes) > 1:
            shapes = sorted(self.image_shapes)[:4]
            raise ValueError(
                f"{self.name}: images have {len(self.image_shapes)} different sizes "
                f"(e.g. {shapes}), so they cannot be stacked into a batch. Pass "
                "image_size=S to `tfface.data.load` to resize every image to S×S."
            )

    def _check_nonempty(self):
        if self.num_examples == 0:
            raise ValueError(f"{self.name} holds no usable image.\n{self.report.summary()}")

    def images_for_indices(self, indices_ds):
        self._check_nonempty()
        self._check_batchable()
        labels = tf.constant(self.labels)
        encoded = self.encoded_fn()

        def read(indices):
            indices = tf.cast(indices, tf.int64)
            return encoded(indices), tf.gather(labels, indices)

        return self._decode_batches(
            indices_ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        )

    def dataset(self, shuffle=False, seed=None):
        if shuffle and seed is None:
            raise ValueError(f"{self.name}: `seed` is required when shuffle=True.")
        self._check_nonempty()
        ds = tf.data.Dataset.range(self.num_examples)
        if shuffle:
            ds = ds.shuffle(self.num_examples, seed=seed, reshuffle_each_iteration=True)
        labels = tf.constant(self.labels)
        encoded = self.encoded_fn()
        image_size = self.image_size
        element_fn = self.element_fn
        ds = ds.batch(READ_CHUNK).map(
            lambda i: (encoded(i), tf.gather(labels, i)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return ds.unbatch().map(
            lambda h, lab: (decode_rgb(element_fn(h), image_size), lab),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    # --- Python-side helpers (convert, inspect) -----------------------------------------

    def validate_decode(self, progress=None):
        """Decodes every image with TensorFlow; bad ones are skipped (or raise) and removed.

        Catches what header checks cannot: corrupt entropy-coded data. Returns the number of
        examples removed. `progress` is an optional callable(n) called after each chunk.
        """
        bad = []
        for start in range(0, self.num_examples, READ_CHUNK):
            rows = self.rows[start : start + READ_CHUNK]
            for offset, (row, data) in enumerate(zip(rows, self.read_encoded(rows), strict=True)):
                try:
                    tf.io.decode_image(data, channels=3, expand_animations=False)
                except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
                    self.report.skip(self.row_name(row), "decode_error", e.message.splitlines()[0])
                    bad.append(start + offset)
            if progress is not None:
                progress(len(rows))
        self.drop(bad)
        return len(bad)

    def drop(self, example_indices):
        """Removes examples; identities left without images are dropped and reported."""
        if len(example_indices) == 0:
            return
        keep = np.ones(self.num_examples, bool)
        keep[np.asarray(example_indices, np.int64)] = False
        self.rows = self.rows[keep]
        old_labels = self.labels[keep]
        present = np.bincount(old_labels, minlength=len(self.identities)) > 0
        for label in np.flatnonzero(~present):
            self.report.skip(self.identity_location(label), "empty_identity", "all images skipped")
        remap = np.cumsum(present) - 1
        self.labels = remap[old_labels].astype(np.int64)
        self.identities = [name for name, p in zip(self.identities, present, strict=True) if p]


def compact_labels(keys, names=None):
    """Contiguous int64 labels from arbitrary sortable identity keys.

    Returns (labels [N], identities) with identities sorted by key; `names` maps a key to
    its display name (default `str(key)`).
    """
    keys = list(keys)
    unique = sorted(set(keys))
    index = {k: i for i, k in enumerate(unique)}
    labels = np.array([index[k] for k in keys], np.int64)
    identities = [(names or {}).get(k, str(k)) for k in unique]
    return labels, identities
