"""Sharded TFRecord faces: writer, per-shard offset index and random-access reader.

Each record is a `tf.train.Example` with `image/encoded` (bytes), `image/label` (int64) and
`image/identity` (bytes). TFRecord framing: uint64 length, uint32 masked CRC32C of the
length, data, uint32 masked CRC32C of the data. The byte offset of every record is indexed
per shard (the DALI `tfrecord2idx` format: one `offset size` line per record, beside the shard
as `<shard>.idx`), so the P×K sampler can read any example by offset.
"""

import json
import os
import re
import struct

import numpy as np
import tensorflow as tf

from tfface.data.bad_input import DEFAULT_MAX_PIXELS
from tfface.data.bad_input import BadInputReport
from tfface.data.bad_input import ImageCheckError
from tfface.data.bad_input import check_bytes
from tfface.data.bad_input import validate_image_args
from tfface.data.encoded import EncodedSource
from tfface.data.encoded import compact_labels
from tfface.data.spec_files import INDEX_SUFFIX
from tfface.data.spec_files import LABELS_SUFFIX
from tfface.data.spec_files import MANIFEST_SUFFIX
from tfface.data.spec_files import shard_files

IMAGE_KEY = "image/encoded"
LABEL_KEY = "image/label"
IDENTITY_KEY = "image/identity"
_HEADER = 12  # uint64 length + uint32 length CRC
_FOOTER = 4  # uint32 data CRC
# A shard our writer named; its sidecars are in tfface/data/spec_files.py.
_SHARD_NAME = re.compile(r"^(.*)-\d{5}-of-\d{5}\.tfrecord$")


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def masked_crc32c(data):
    """TFRecord's masked CRC32C (Castagnoli); pure Python, used on the 8 length bytes."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def make_example(encoded, label, identity):
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes(encoded)])),
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                IDENTITY_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[str(identity).encode("utf-8")])
                ),
            }
        )
    )


def shard_path(out_prefix, shard, num_shards):
    return f"{out_prefix}-{shard:05d}-of-{num_shards:05d}.tfrecord"


def write_tfrecords(examples, out_prefix, num_shards=1):
    """Writes (encoded bytes, int label, identity name) examples round-robin into shards.

    Args:
        examples: iterable of (encoded image bytes, int label, identity name).
        out_prefix: shards are `{out_prefix}-00000-of-0000N.tfrecord`; each gets a
            `.idx` offset index (DALI format) and `{out_prefix}.manifest.json` lists the
            identities and shards.
        num_shards: number of shards (≥ 1).

    Returns the list of shard paths.
    """
    if int(num_shards) != num_shards or num_shards < 1:
        raise ValueError(
            f"`num_shards` must be a positive integer. Received: num_shards={num_shards}"
        )
    parent = os.path.dirname(os.path.abspath(out_prefix))
    os.makedirs(parent, exist_ok=True)
    paths = [shard_path(out_prefix, i, num_shards) for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    indexes = [open(p + ".idx", "w") for p in paths]
    positions = [0] * num_shards
    counts = [0] * num_shards
    shard_labels = [[] for _ in range(num_shards)]
    identities = {}
    try:
        for i, (encoded, label, identity) in enumerate(examples):
            shard = i % num_shards
            data = make_example(encoded, label, identity).SerializeToString()
            writers[shard].write(data)
            size = _HEADER + len(data) + _FOOTER
            indexes[shard].write(f"{positions[shard]} {size}\n")
            positions[shard] += size
            counts[shard] += 1
            shard_labels[shard].append(int(label))
            identities.setdefault(int(label), str(identity))
    finally:
        for w in writers:
            w.close()
        for f in indexes:
            f.close()
    for path, labels in zip(paths, shard_labels, strict=True):
        np.save(path + LABELS_SUFFIX, np.array(labels, np.int64))
    manifest = {
        "format": "tfface-tfrecord",
        "features": {"image": IMAGE_KEY, "label": LABEL_KEY, "identity": IDENTITY_KEY},
        "identities": {str(k): v for k, v in sorted(identities.items())},
        "shards": [
            {"file": os.path.basename(p), "num_records": n}
            for p, n in zip(paths, counts, strict=True)
        ],
    }
    with open(out_prefix + MANIFEST_SUFFIX, "w") as f:
        json.dump(manifest, f, indent=1)
    return paths


def scan_shard(fd, file_size, path, report):
    """[(offset, data_length)] of every record whose framing is intact.

    A broken length (bad length CRC or a record running past the end of the file) makes the
    rest of the shard unreachable: it is reported once as `bad_record`/`short_read`.
    """
    records = []
    pos = 0
    while pos < file_size:
        where = f"{path}@offset={pos}"
        if pos + _HEADER > file_size:
            report.skip(where, "short_read", f"{file_size - pos} trailing bytes")
            break
        header = os.pread(fd, _HEADER, pos)
        (length,) = struct.unpack("<Q", header[:8])
        (length_crc,) = struct.unpack("<I", header[8:])
        if masked_crc32c(header[:8]) != length_crc:
            report.skip(where, "bad_record", "length CRC mismatch; rest of shard unreadable")
            break
        if pos + _HEADER + length + _FOOTER > file_size:
            report.skip(where, "short_read", f"record of {length} bytes runs past end of file")
            break
        records.append((pos, length))
        pos += _HEADER + length + _FOOTER
    return records


def indexed_shard(fd, file_size, path, report):
    """[(offset, data_length)], labels and identity names from our writer's sidecars.

    Returns None when a sidecar is missing or inconsistent (the caller then scans the shard).
    Only the 12-byte framing header of each record is read and checked.
    """
    match = _SHARD_NAME.match(path)
    manifest_path = (match.group(1) if match else "") + MANIFEST_SUFFIX
    sidecars = (path + INDEX_SUFFIX, path + LABELS_SUFFIX, manifest_path)
    if not match or not all(os.path.isfile(p) for p in sidecars):
        return None
    with open(path + INDEX_SUFFIX) as f:
        index = [tuple(int(x) for x in line.split()[:2]) for line in f if line.strip()]
    labels = np.load(path + LABELS_SUFFIX)
    with open(manifest_path) as f:
        names = {int(k): v for k, v in json.load(f).get("identities", {}).items()}
    if len(index) != len(labels):
        return None
    records, kept = [], []
    for (offset, size), label in zip(index, labels, strict=True):
        where = f"{path}@offset={offset}"
        if offset < 0 or offset + size > file_size or size < _HEADER + _FOOTER:
            report.skip(where, "short_read", f"indexed record of {size} bytes, file {file_size}")
            continue
        header = os.pread(fd, _HEADER, offset)
        (length,) = struct.unpack("<Q", header[:8])
        if masked_crc32c(header[:8]) != struct.unpack("<I", header[8:])[0] or (
            length != size - _HEADER - _FOOTER
        ):
            report.skip(where, "bad_record", "framing does not match the .idx entry")
            continue
        records.append((offset, length))
        kept.append(int(label))
    return records, kept, names


def _first(feature, kind):
    if feature is None:
        return None
    values = getattr(feature, kind).value
    return values[0] if len(values) else None


class TFRecordSource(EncodedSource):
    """Faces stored as sharded TFRecords of `tf.train.Example`.

    On construction every shard's framing is scanned (building the per-record offset
    index), every Example is parsed for its label and identity, and every image is
    header-checked. In `tf.data`, a batch of records is read by offset with `os.pread` in
    one `tf.numpy_function` call and parsed with `tf.io.parse_example`.

    Args:
        pattern: the PREFIX `write_tfrecords` was given, a glob of shard files (`.idx`,
            `.labels.npy`, `.json` sidecars are ignored) or a list of paths.
        on_bad_image: "skip" or "fail".
        image_size: None or S (resize to S×S when decoding).
        max_pixels: header-checked size limit.
        image_key, label_key, identity_key: feature names (None: absent). Without a label
            feature, labels are derived from the identity (sorted by identity name).
        identity_names: optional {label: name} used when records carry no identity.
        check_images: False skips the image header checks; shards that carry our writer's
            sidecars (`.idx`, `.labels.npy`, manifest) then open reading only each
            record's 12-byte framing header (a fast open for large datasets).
        progress: optional callable(n) advanced per scanned record.
        name: the spec used in reports (default `tfrecord:PATTERN`).
    """

    def __init__(
        self,
        pattern,
        on_bad_image="skip",
        image_size=None,
        max_pixels=DEFAULT_MAX_PIXELS,
        image_key=IMAGE_KEY,
        label_key=LABEL_KEY,
        identity_key=IDENTITY_KEY,
        identity_names=None,
        check_images=True,
        progress=None,
        name=None,
    ):
        validate_image_args(max_pixels, image_size)  # before a long scan
        if isinstance(pattern, (list, tuple)):
            files = list(pattern)
            if not files:
                raise ValueError("`pattern` must name at least one TFRecord shard. Received: []")
        else:
            files = shard_files(pattern)
        name = name or f"tfrecord:{pattern}"
        self.files = files
        self.image_key = image_key
        report = BadInputReport(name, on_bad_image)
        self._fds = []
        shard_ids, offsets, lengths, keys, shapes = [], [], [], [], set()
        names = dict(identity_names or {})
        for shard, path in enumerate(files):
            fd = os.open(path, os.O_RDONLY)
            self._fds.append(fd)
            file_size = os.fstat(fd).st_size
            indexed = None if check_images else indexed_shard(fd, file_size, path, report)
            if indexed is not None:
                records, shard_labels, shard_names = indexed
                if progress is not None:
                    progress(len(records))
                for (offset, length), label in zip(records, shard_labels, strict=True):
                    names.setdefault(label, shard_names.get(label, str(label)))
                    shard_ids.append(shard)
                    offsets.append(offset + _HEADER)
                    lengths.append(length)
                    keys.append(label)
                continue
            for offset, length in scan_shard(fd, file_size, path, report):
                where = f"{path}@offset={offset}"
                if progress is not None:
                    progress(1)
                try:
                    example = tf.train.Example.FromString(os.pread(fd, length, offset + _HEADER))
                except Exception as e:  # protobuf raises DecodeError, not a stable base class
                    report.skip(where, "bad_record", f"not a tf.train.Example ({e})")
                    continue
                feature = example.features.feature
                image = _first(feature.get(image_key), "bytes_list")
                label = _first(feature.get(label_key or ""), "int64_list")
                identity = _first(feature.get(identity_key or ""), "bytes_list")
                if image is None or (label is None and identity is None):
                    missing = image_key if image is None else f"{label_key} / {identity_key}"
                    report.skip(where, "missing_field", f"no {missing!r} feature")
                    continue
                if check_images:
                    try:
                        (_, width, height, _), notes = check_bytes(image, "", max_pixels)
                    except ImageCheckError as e:
                        report.skip(where, e.reason, e.detail)
                        continue
                    for note in notes:
                        report.note(where, note)
                    shapes.add((height, width))
                elif not image:
                    report.skip(where, "empty_file", "record holds no image bytes")
                    continue
                identity = None if identity is None else identity.decode("utf-8", "replace")
                key = int(label) if label is not None else identity
                if identity is not None:
                    names.setdefault(key, identity)
                shard_ids.append(shard)
                offsets.append(offset + _HEADER)
                lengths.append(length)
                keys.append(key)
        labels, identities = compact_labels(keys, names)
        self._shards = np.array(shard_ids, np.int64)
        self._offsets = np.array(offsets, np.int64)
        self._lengths = np.array(lengths, np.int64)
        super().__init__(
            name,
            rows=np.arange(len(offsets)),
            labels=labels,
            identities=identities,
            report=report,
            image_size=image_size,
            image_shapes=shapes if check_images else None,
            max_pixels=max_pixels,
        )

    def row_name(self, row):
        return f"{self.files[self._shards[row]]}@offset={self._offsets[row] - _HEADER}"

    def read_serialized(self, rows):
        return [
            os.pread(self._fds[self._shards[r]], int(self._lengths[r]), int(self._offsets[r]))
            for r in rows
        ]

    def read_encoded(self, rows):
        out = []
        for data in self.read_serialized(rows):
            feature = tf.train.Example.FromString(data).features.feature
            out.append(feature[self.image_key].bytes_list.value[0])
        return out

    def encoded_fn(self):
        rows = tf.constant(self.rows)
        spec = {self.image_key: tf.io.FixedLenFeature([], tf.string)}

        def read(batch_rows):
            return np.array(self.read_serialized(batch_rows), dtype=object)

        def fn(indices):
            serialized = tf.numpy_function(read, [tf.gather(rows, indices)], tf.string)
            serialized.set_shape(indices.shape)
            encoded = tf.io.parse_example(serialized, spec)[self.image_key]
            encoded.set_shape(indices.shape)  # parse_example drops the static batch size
            return encoded

        return fn

    def __del__(self):
        for fd in getattr(self, "_fds", []):
            os.close(fd)
        self._fds = []
