import os
import struct

import numpy as np
import pytest

from tests.data import fixtures
from tfface.data.bad_input import BadInputError
from tfface.data.recordio import MAGIC_BYTES
from tfface.data.recordio import RecSource
from tfface.data.recordio import encode_record
from tfface.data.recordio import pack
from tfface.data.recordio import unpack
from tfface.data.recordio import write_rec

# --- an independent, literal implementation of the dmlc format (test-only) -------------
# Mirrors dmlc-core RecordIOWriter::WriteRecord and mxnet.recordio.pack line by line, with
# byte-at-a-time loops instead of the library's str.find: a second reading of the spec.

KMAGIC = 0xCED7230A


def literal_write_record(out, buf):
    magic = struct.pack("<I", KMAGIC)
    length = len(buf)
    lower_align = (length >> 2) << 2
    upper_align = ((length + 3) >> 2) << 2
    dptr = 0
    for i in range(0, lower_align, 4):
        if (
            buf[i] == magic[0]
            and buf[i + 1] == magic[1]
            and buf[i + 2] == magic[2]
            and (buf[i + 3] == magic[3])
        ):
            lrec = ((1 if dptr == 0 else 2) << 29) | (i - dptr)
            out.write(magic)
            out.write(struct.pack("<I", lrec))
            out.write(buf[dptr:i])
            dptr = i + 4
    lrec = ((3 if dptr != 0 else 0) << 29) | (length - dptr)
    out.write(magic)
    out.write(struct.pack("<I", lrec))
    out.write(buf[dptr:])
    out.write(b"\0" * (upper_align - length))


def literal_pack(label, image):
    if isinstance(label, (int, float)):
        return struct.pack("IfQQ", 0, label, 0, 0) + image
    label = np.asarray(label, np.float32)
    return struct.pack("IfQQ", label.size, 0, 0, 0) + label.tobytes() + image


def literal_write_indexed(prefix, records):
    """records: [(key, payload)] → PREFIX.rec / PREFIX.idx like MXIndexedRecordIO."""
    with open(prefix + ".rec", "wb") as rec, open(prefix + ".idx", "w") as idx:
        for key, payload in records:
            idx.write(f"{key}\t{rec.tell()}\n")
            literal_write_record(rec, payload)


def png_with_magic(seed):
    """A PNG whose payload (after the 24-byte header) holds the magic at aligned offsets.

    Trailing bytes after IEND are ignored by decoders; the first magic sits 4-byte aligned
    in the payload (so the record is split), the second unaligned (so it is not).
    """
    data = fixtures.png(seed)
    pad = -(24 + len(data)) % 4
    return data + b"\0" * pad + MAGIC_BYTES + b"\0" * 5 + MAGIC_BYTES + MAGIC_BYTES[:2]


# --------------------------------------------------------------------------------------


def _insightface_records(images_by_identity):
    """Header record 0, image records 1..a-1, identity records a..b-1 (face2rec layout)."""
    records, ranges, key = [], [], 1
    for label, images in enumerate(images_by_identity):
        start = key
        for image in images:
            records.append((key, literal_pack(float(label), image)))
            key += 1
        ranges.append((start, key))
    a = key
    for i, (start, end) in enumerate(ranges):
        records.append((a + i, literal_pack([float(start), float(end)], b"")))
    b = a + len(ranges)
    return [(0, literal_pack([float(a), float(b)], b""))] + records


def test_literal_writer_pair_reads_back(tmp_path):
    images = [[fixtures.png(1), png_with_magic(2)], [fixtures.jpeg(3)], [png_with_magic(4)] * 2]
    prefix = str(tmp_path / "train")
    literal_write_indexed(prefix, _insightface_records(images))
    with open(prefix + ".rec", "rb") as f:
        raw = f.read()
    assert struct.unpack("<I", raw[4:8])[0] >> 29 == 0
    # The magic inside the PNG payloads must have split those records into chunks.
    assert any(
        (struct.unpack("<I", raw[i + 4 : i + 8])[0] >> 29) == 1
        for i in range(0, len(raw), 4)
        if raw[i : i + 4] == MAGIC_BYTES
    )

    source = RecSource(prefix)
    assert source.layout == "insightface"
    np.testing.assert_array_equal(source.labels, [0, 0, 1, 2, 2])
    assert source.identities == ["0", "1", "2"]
    flat = [image for group in images for image in group]
    assert source.read_encoded(source.rows) == flat
    assert source.report.num_skipped == 0
    decoded = [img for img, _ in source.dataset().as_numpy_iterator()]
    np.testing.assert_array_equal(decoded[1], fixtures.rgb(2))


def test_plain_keyed_records(tmp_path):
    prefix = str(tmp_path / "plain")
    records = [
        (k, literal_pack(float(label), png_with_magic(k)))
        for k, label in [(0, 5), (1, 3), (2, 5), (7, 9)]
    ]
    literal_write_indexed(prefix, records)
    source = RecSource(prefix + ".rec")
    assert source.layout == "plain"
    assert source.identities == ["3", "5", "9"]
    np.testing.assert_array_equal(source.labels, [1, 0, 1, 2])
    np.testing.assert_array_equal(source.raw_labels, [5, 3, 5, 9])


def test_label_array_uses_first_value(tmp_path):
    prefix = str(tmp_path / "multi")
    literal_write_indexed(prefix, [(1, literal_pack([4.0, 1.5], fixtures.png(0)))])
    assert RecSource(prefix).raw_labels.tolist() == [4]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"abc",
        MAGIC_BYTES,
        b"x" * 4 + MAGIC_BYTES * 3 + b"yz",
        b"ab" + MAGIC_BYTES + b"cd",
        os.urandom(999) + MAGIC_BYTES,
    ],
)
def test_encode_record_matches_literal_writer(tmp_path, payload):
    path = tmp_path / "one.rec"
    with open(path, "wb") as f:
        literal_write_record(f, payload)
    assert encode_record(payload) == path.read_bytes()


def test_writer_matches_literal_writer_byte_for_byte(tmp_path):
    images = [[fixtures.png(1), png_with_magic(2)], [fixtures.jpeg(3)]]
    literal_write_indexed(str(tmp_path / "lit"), _insightface_records(images))
    examples = [(im, label, str(label)) for label, group in enumerate(images) for im in group]
    assert write_rec(examples, str(tmp_path / "ours")) == 3
    for ext in (".rec", ".idx"):
        assert (tmp_path / f"ours{ext}").read_bytes() == (tmp_path / f"lit{ext}").read_bytes()
    assert (tmp_path / "ours.identities.txt").read_text() == "0\n1\n"


def test_pack_unpack_round_trip():
    flag, label, id_, id2, image = unpack(pack(7.0, b"img", id=3, id2=4))
    assert (flag, label, id_, id2, image) == (0, 7.0, 3, 4, b"img")
    flag, label, *_, image = unpack(pack([1.0, 2.0, 3.0], b"img"))
    assert flag == 3 and label.tolist() == [1.0, 2.0, 3.0] and image == b"img"
    assert pack(7.0, b"") == literal_pack(7.0, b"")


def test_writer_names_round_trip_and_random_access(tmp_path):
    examples = [(fixtures.png(i), i // 2, ["ann", "ben", "cy"][i // 2]) for i in range(6)]
    write_rec(examples, str(tmp_path / "x"))
    source = RecSource(str(tmp_path / "x"))
    assert source.identities == ["ann", "ben", "cy"]
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(np.array([[5, 0, 3]], np.int64))
    images, labels = next(source.images_for_indices(ds).as_numpy_iterator())
    np.testing.assert_array_equal(labels, [2, 0, 1])
    np.testing.assert_array_equal(images[0], fixtures.rgb(5))


def test_writer_requires_grouped_labels(tmp_path):
    with pytest.raises(ValueError, match="grouped by label"):
        write_rec([(fixtures.png(0), 1, "b")], str(tmp_path / "x"))


def _corrupt_pair(tmp_path):
    prefix = str(tmp_path / "bad")
    images = [fixtures.png(i) for i in range(5)]
    literal_write_indexed(
        prefix, [(k, literal_pack(float(k % 2), im)) for k, im in enumerate(images, start=1)]
    )
    offsets = [int(line.split()[1]) for line in open(prefix + ".idx")]
    return prefix, offsets


def test_bad_magic_out_of_range_and_short_read(tmp_path):
    prefix, offsets = _corrupt_pair(tmp_path)
    raw = bytearray(open(prefix + ".rec", "rb").read())
    raw[offsets[1] : offsets[1] + 4] = b"\xde\xad\xbe\xef"  # record 2: bad magic
    raw = raw[: offsets[4] + 20]  # record 5: file ends inside its payload
    open(prefix + ".rec", "wb").write(bytes(raw))
    with open(prefix + ".idx", "a") as f:
        f.write(f"6\t{len(raw) + 100}\n")  # record 6: offset past the end of the .rec
    source = RecSource(prefix)
    reasons = sorted(r for _, r, _ in source.report.skipped)
    assert reasons == ["bad_magic", "idx_out_of_range", "short_read"]
    assert source.num_examples == 3
    np.testing.assert_array_equal(source.raw_labels, [1, 1, 0])
    assert len(list(source.dataset())) == 3


def test_truncated_image_inside_record(tmp_path):
    prefix = str(tmp_path / "t")
    literal_write_indexed(
        prefix,
        [
            (1, literal_pack(0.0, fixtures.truncated_jpeg(0))),
            (2, literal_pack(0.0, fixtures.jpeg(1))),
        ],
    )
    source = RecSource(prefix)
    assert source.report.counts == {"truncated": 1} and source.num_examples == 1


def test_fail_policy_and_missing_files(tmp_path):
    prefix, offsets = _corrupt_pair(tmp_path)
    with open(prefix + ".idx", "a") as f:
        f.write("9\t999999\n")
    with pytest.raises(BadInputError, match="key=9.*idx_out_of_range"):
        RecSource(prefix, on_bad_image="fail")
    with pytest.raises(ValueError, match="does not exist"):
        RecSource(str(tmp_path / "nothing"))
    with open(prefix + ".idx", "a") as f:
        f.write("garbage line\n")
    with pytest.raises(ValueError, match=r"bad.idx:7: expected 'key<TAB>offset'"):
        RecSource(prefix)


def test_check_images_false_reads_headers_only(tmp_path):
    prefix = str(tmp_path / "fast")
    # Even keys are unsplit (fast path), odd keys hold the magic (split: full-read fallback).
    images = {k: fixtures.png(k) if k % 2 == 0 else png_with_magic(k) for k in range(1, 7)}
    records = [(k, literal_pack(float(k % 3), images[k])) for k in range(1, 7)]
    records.append((7, literal_pack(2.0, fixtures.truncated_jpeg(0))))
    literal_write_indexed(prefix, records)
    fast = RecSource(prefix, check_images=False)
    full = RecSource(prefix)
    assert fast.num_examples == 7 and full.num_examples == 6  # truncation needs the image
    np.testing.assert_array_equal(fast.raw_labels[:6], full.raw_labels)
    np.testing.assert_array_equal(fast._spans[:6], full._spans)
    assert fast.read_encoded(fast.rows[:6]) == full.read_encoded(full.rows)
