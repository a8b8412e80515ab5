import json
import os
import struct

import numpy as np
import pytest
import tensorflow as tf

from tests.data import fixtures
from tfface.data.bad_input import BadInputError
from tfface.data.tfrecord import TFRecordSource
from tfface.data.tfrecord import make_example
from tfface.data.tfrecord import masked_crc32c
from tfface.data.tfrecord import write_tfrecords


def _examples(n=7, per=2):
    names = ["ann", "ben", "cy", "dee"]
    return [(fixtures.png(i), i // per, names[i // per]) for i in range(n)]


def test_masked_crc32c_matches_tensorflow_writer(tmp_path):
    # CRC-32C check value of "123456789" is 0xE3069283; masking per TFRecord's crc32c.h.
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    path = str(tmp_path / "one.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(b"hello")
    raw = open(path, "rb").read()
    assert struct.unpack("<I", raw[8:12])[0] == masked_crc32c(raw[:8])


def test_round_trip_sharded(tmp_path):
    examples = _examples()
    paths = write_tfrecords(examples, str(tmp_path / "faces"), num_shards=3)
    assert [os.path.basename(p) for p in paths] == [
        f"faces-0000{i}-of-00003.tfrecord" for i in range(3)
    ]
    manifest = json.load(open(tmp_path / "faces.manifest.json"))
    assert manifest["identities"] == {"0": "ann", "1": "ben", "2": "cy", "3": "dee"}
    assert [s["num_records"] for s in manifest["shards"]] == [3, 2, 2]

    source = TFRecordSource(str(tmp_path / "faces-*"))
    assert source.identities == ["ann", "ben", "cy", "dee"]
    assert source.manifest.counts.tolist() == [2, 2, 2, 1]
    # Shards were written round-robin: shard 0 holds examples 0, 3, 6.
    encoded = source.read_encoded(source.rows)
    assert encoded[:3] == [examples[0][0], examples[3][0], examples[6][0]]
    by_bytes = {e[0]: e for e in examples}
    for data, label in zip(encoded, source.labels, strict=True):
        assert source.identities[label] == by_bytes[data][2]

    ds = tf.data.Dataset.from_tensor_slices(np.array([[6, 0], [1, 2]], np.int64))
    out = list(source.images_for_indices(ds).as_numpy_iterator())
    for (images, labels), indices in zip(out, [[6, 0], [1, 2]], strict=True):
        np.testing.assert_array_equal(labels, source.labels[indices])
        for image, index in zip(images, indices, strict=True):
            seed = [e[0] for e in examples].index(encoded[index])
            np.testing.assert_array_equal(image, fixtures.rgb(seed))
    assert len(list(source.dataset())) == 7


def test_index_files_hold_record_offsets(tmp_path):
    write_tfrecords(_examples(5), str(tmp_path / "x"), num_shards=2)
    for shard in sorted(tmp_path.glob("x-*.tfrecord")):
        raw = shard.read_bytes()
        lines = open(str(shard) + ".idx").read().split("\n")[:-1]
        pos = 0
        for line in lines:
            offset, size = map(int, line.split())
            (length,) = struct.unpack("<Q", raw[offset : offset + 8])
            assert offset == pos and size == length + 16
            example = tf.train.Example.FromString(raw[offset + 12 : offset + 12 + length])
            assert "image/encoded" in example.features.feature
            pos += size
        assert pos == len(raw)


def test_reads_plain_tf_writer_shards_with_identity_only(tmp_path):
    # A foreign TFRecord with only image + identity: labels come from sorted identities.
    path = str(tmp_path / "foreign.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i, name in enumerate(["zed", "amy", "zed"]):
            example = make_example(fixtures.jpeg(i), 0, name)
            del example.features.feature["image/label"]
            w.write(example.SerializeToString())
    source = TFRecordSource(path)
    assert source.identities == ["amy", "zed"]
    np.testing.assert_array_equal(source.labels, [1, 0, 1])


def test_bad_records_are_skipped(tmp_path):
    path = str(tmp_path / "bad.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(make_example(fixtures.png(0), 0, "a").SerializeToString())
        w.write(make_example(fixtures.truncated_jpeg(1), 0, "a").SerializeToString())
        w.write(b"\xff\xfe not a protobuf")
        no_image = make_example(b"", 1, "b")
        del no_image.features.feature["image/encoded"]
        w.write(no_image.SerializeToString())
        w.write(make_example(fixtures.png(2), 1, "b").SerializeToString())
        w.write(make_example(fixtures.png(3), 1, "b").SerializeToString())
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:-30])  # the last record runs past the end of the file
    source = TFRecordSource(path)
    assert source.report.counts == {
        "bad_record": 1,
        "missing_field": 1,
        "short_read": 1,
        "truncated": 1,
    }
    assert source.identities == ["a", "b"]
    np.testing.assert_array_equal(source.labels, [0, 1])
    assert len(list(source.dataset())) == 2


def test_corrupt_length_crc_stops_the_shard(tmp_path):
    path = str(tmp_path / "crc.tfrecord")
    write_tfrecords(_examples(3), str(tmp_path / "crc"), num_shards=1)
    os.rename(str(tmp_path / "crc-00000-of-00001.tfrecord"), path)
    raw = bytearray(open(path, "rb").read())
    first_len = struct.unpack("<Q", raw[:8])[0]
    second = 16 + first_len
    raw[second + 8] ^= 0xFF
    open(path, "wb").write(bytes(raw))
    source = TFRecordSource(path)
    assert source.num_examples == 1
    assert source.report.counts == {"bad_record": 1}
    with pytest.raises(BadInputError, match=r"crc.tfrecord@offset=\d+.*bad_record"):
        TFRecordSource(path, on_bad_image="fail")


def test_no_match(tmp_path):
    with pytest.raises(ValueError, match="No TFRecord shard"):
        TFRecordSource(str(tmp_path / "none-*"))
    with pytest.raises(ValueError, match="num_shards"):
        write_tfrecords([], str(tmp_path / "x"), num_shards=0)


def test_fast_open_from_sidecars(tmp_path):
    examples = _examples(7)
    paths = write_tfrecords(examples, str(tmp_path / "fast"), num_shards=2)
    assert np.load(paths[0] + ".labels.npy").tolist() == [0, 1, 2, 3]
    full = TFRecordSource(str(tmp_path / "fast-*"))
    assert full.files == paths and full.report.num_skipped == 0  # sidecars are not shards
    fast = TFRecordSource(str(tmp_path / "fast-*"), check_images=False)
    assert fast.identities == full.identities
    np.testing.assert_array_equal(fast.labels, full.labels)
    assert fast.read_encoded(fast.rows) == full.read_encoded(full.rows)
    assert fast.image_shapes is None  # sizes unknown without the image headers

    # A damaged length header is still caught from the framing; the shard's other records
    # stay reachable through the index.
    raw = bytearray(open(paths[1], "rb").read())
    second = int(open(paths[1] + ".idx").read().split("\n")[1].split()[0])
    raw[second] ^= 0x01
    open(paths[1], "wb").write(bytes(raw))
    damaged = TFRecordSource(str(tmp_path / "fast-*"), check_images=False)
    assert damaged.report.counts == {"bad_record": 1} and damaged.num_examples == 6

    # Without the labels sidecar the shard is scanned: the damage now ends that shard.
    os.remove(paths[1] + ".labels.npy")
    scanned = TFRecordSource(str(tmp_path / "fast-*"), check_images=False)
    assert scanned.report.counts == {"bad_record": 1} and scanned.num_examples == 5
