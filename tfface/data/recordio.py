"""MXNet RecordIO (`.rec` + `.idx`) reader and writer, without MXNet.

Format (dmlc-core `recordio.h`/`recordio.cc`, mxnet `recordio.py`):

- `.idx`: text lines `key\\toffset`, offset = byte position of the record's first chunk.
- `.rec` chunk: uint32 magic 0xced7230a, uint32 lrec (low 29 bits: length, high 3 bits:
  cflag), `length` bytes, zero padding to a multiple of 4. The writer scans the payload at
  4-byte aligned positions; wherever the magic occurs it ends the chunk there (cflag 1 for the
  first chunk, 2 for middle ones), drops the 4 magic bytes and continues after them; the last
  chunk has cflag 3 (0 when the record was not split). The reader concatenates the chunks and
  re-inserts the magic between them.
- payload (`mxnet.recordio.pack`): struct `<IfQQ` = (flag, label, id, id2), 24 bytes; when
  flag > 0 the label is instead `flag` float32 values following the header; then the image.
- insightface layout: record 0 has flag > 0 and label (a, b); image records are keys
  1 … a−1; records a … b−1 describe identities as [first, last+1) image-key ranges. Without
  such a header record every key is an image whose identity is its label (or label[0]).
"""

import os
import struct

import numpy as np

from tfface.data.bad_input import DEFAULT_MAX_PIXELS
from tfface.data.bad_input import BadInputReport
from tfface.data.bad_input import ImageCheckError
from tfface.data.bad_input import check_bytes
from tfface.data.bad_input import validate_image_args
from tfface.data.encoded import EncodedSource
from tfface.data.encoded import compact_labels
from tfface.data.spec_files import rec_paths

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)  # 24
_LEN_MASK = (1 << 29) - 1
# Identity names are not part of RecordIO; our writer stores them beside the pair.
IDENTITIES_SUFFIX = ".identities.txt"


class RecordError(Exception):
    """Internal: one record is broken (`reason` is a `SKIP_REASONS` key)."""

    def __init__(self, reason, detail):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def pack(label, image, id=0, id2=0):
    """Payload bytes as `mxnet.recordio.pack(IRHeader(0, label, id, id2), image)`."""
    if np.ndim(label) == 0:
        return struct.pack(IR_FORMAT, 0, float(label), id, id2) + bytes(image)
    label = np.asarray(label, np.float32).ravel()
    header = struct.pack(IR_FORMAT, label.size, 0.0, id, id2)
    return header + label.astype("<f4").tobytes() + bytes(image)


def unpack(payload):
    """(flag, label, id, id2, image bytes) as `mxnet.recordio.unpack`.

    label is a float when flag == 0, else a float32 array of `flag` values.
    """
    if len(payload) < IR_SIZE:
        raise RecordError("bad_record", f"payload of {len(payload)} bytes < {IR_SIZE}-byte header")
    flag, label, id_, id2 = struct.unpack(IR_FORMAT, payload[:IR_SIZE])
    rest = payload[IR_SIZE:]
    if flag > 0:
        if len(rest) < 4 * flag:
            raise RecordError("bad_record", f"header announces {flag} labels, payload too short")
        label = np.frombuffer(rest[: 4 * flag], "<f4").astype(np.float32)
        rest = rest[4 * flag :]
    return flag, label, id_, id2, rest


def encode_record(payload):
    """The chunks dmlc `RecordIOWriter::WriteRecord` writes for one payload."""
    payload = bytes(payload)
    n = len(payload)
    if n >= 1 << 29:
        raise ValueError(f"RecordIO records must be < 2**29 bytes. Received: {n} bytes")
    out = []
    dptr = 0
    pos = payload.find(MAGIC_BYTES)
    while pos != -1 and pos + 4 <= (n >> 2) << 2:
        if pos % 4 == 0:
            cflag = 1 if dptr == 0 else 2
            out += [MAGIC_BYTES, struct.pack("<I", (cflag << 29) | (pos - dptr)), payload[dptr:pos]]
            dptr = pos + 4
            pos = payload.find(MAGIC_BYTES, dptr)
        else:
            pos = payload.find(MAGIC_BYTES, pos + 1)
    cflag = 3 if dptr else 0
    out += [MAGIC_BYTES, struct.pack("<I", (cflag << 29) | (n - dptr)), payload[dptr:]]
    out.append(b"\0" * (-n % 4))
    return b"".join(out)


def read_record(fd, offset, file_size):
    """(payload, span in bytes) of the record whose first chunk starts at `offset`."""
    parts = []
    pos = offset
    while True:
        if pos + 8 > file_size:
            raise RecordError("short_read", f"chunk header at byte {pos} past end ({file_size})")
        magic, lrec = struct.unpack("<II", os.pread(fd, 8, pos))
        if magic != MAGIC:
            raise RecordError("bad_magic", f"0x{magic:08x} at byte {pos}, expected 0x{MAGIC:08x}")
        cflag, length = lrec >> 29, lrec & _LEN_MASK
        if cflag not in ((0, 1) if not parts else (2, 3)):
            where = "first" if not parts else "continuation"
            raise RecordError("bad_record", f"{where} chunk at byte {pos} has cflag {cflag}")
        if pos + 8 + length > file_size:
            raise RecordError(
                "short_read", f"chunk at byte {pos} needs {length} bytes, file has {file_size}"
            )
        parts.append(os.pread(fd, length, pos + 8))
        pos += 8 + length + (-length % 4)
        if cflag in (0, 3):
            return MAGIC_BYTES.join(parts), min(pos, file_size) - offset


# Bytes read per record when image checks are off: chunk header, IRHeader, a few labels.
_HEAD_READ = 8 + IR_SIZE + 4 * 8


def read_record_head(fd, offset, file_size):
    """Like `read_record` but reads only the start of an unsplit record's payload.

    The returned payload is cut after the IRHeader and label floats plus at most a few
    image bytes; the span covers the whole record. Split records fall back to a full read.
    """
    if offset + 8 > file_size:
        raise RecordError("short_read", f"chunk header at byte {offset} past end ({file_size})")
    head = os.pread(fd, _HEAD_READ, offset)
    magic, lrec = struct.unpack("<II", head[:8])
    if magic != MAGIC:
        raise RecordError("bad_magic", f"0x{magic:08x} at byte {offset}, expected 0x{MAGIC:08x}")
    cflag, length = lrec >> 29, lrec & _LEN_MASK
    if cflag != 0:
        return read_record(fd, offset, file_size)
    if offset + 8 + length > file_size:
        raise RecordError(
            "short_read", f"chunk at byte {offset} needs {length} bytes, file has {file_size}"
        )
    span = min(offset + 8 + length + (-length % 4), file_size) - offset
    return head[8 : 8 + length], span


def split_chunks(buffer):
    """Payload from an in-memory span read at a record's offset (chunks already checked)."""
    parts = []
    pos = 0
    while True:
        _, lrec = struct.unpack_from("<II", buffer, pos)
        cflag, length = lrec >> 29, lrec & _LEN_MASK
        parts.append(buffer[pos + 8 : pos + 8 + length])
        pos += 8 + length + (-length % 4)
        if cflag in (0, 3):
            return MAGIC_BYTES.join(parts)


class RecordIOWriter:
    """Writes a `.rec`/`.idx` pair byte-for-byte like `mxnet.recordio.MXIndexedRecordIO`.

    Args:
        path: `PATH`, `PATH.rec` or `PATH.idx`; both files are created.

    Example:
    >>> with RecordIOWriter("/tmp/faces") as w:  # doctest: +SKIP
    ...     w.write(1, pack(0.0, jpeg_bytes))
    """

    def __init__(self, path):
        self.rec_path, self.idx_path = rec_paths(path)
        self._rec = open(self.rec_path, "wb")
        self._idx = open(self.idx_path, "w")
        self.keys = []

    def write(self, key, payload):
        offset = self._rec.tell()
        self._rec.write(encode_record(payload))
        self._idx.write(f"{key}\t{offset}\n")
        self.keys.append(key)
        return offset

    def tell(self):
        return self._rec.tell()

    def close(self):
        self._rec.close()
        self._idx.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_rec(examples, path, identities=None):
    """Writes examples in the insightface layout; returns the number of images written.

    Args:
        examples: iterable of (encoded image bytes, int label, identity name), grouped by
            label in increasing order (labels 0 … C−1, each identity contiguous).
        path: `PATH` (writes PATH.rec, PATH.idx and PATH.identities.txt).
        identities: optional list of identity names indexed by label; defaults to the
            names seen in `examples`.

    Record 0 is the header (a, b); keys 1 … a−1 are images with their label as a float32
    (exact up to 2**24 identities); keys a … b−1 hold each identity's [first, last+1) key
    range, as insightface's `face2rec` writes them.
    """
    names = {}
    ranges = []  # [first_key, end_key) per label
    key = 1
    with RecordIOWriter(path) as w:
        # The header's (a, b) are only known at the end; its size does not depend on them.
        w.write(0, pack([0.0, 0.0], b""))
        header_size = w.tell()
        for data, label, identity in examples:
            label = int(label)
            if label >= 2**24:
                raise ValueError(f"Label {label} is not exact in float32 (RecordIO labels).")
            if label != len(ranges) - 1:
                if label != len(ranges):
                    raise ValueError(
                        f"write_rec needs examples grouped by label 0, 1, …; got label {label} "
                        f"after {len(ranges)} identities."
                    )
                ranges.append([key, key])
                names[label] = identity
            w.write(key, pack(float(label), data))
            ranges[-1][1] = key + 1
            key += 1
        a = key
        for label, (first, end) in enumerate(ranges):
            w.write(a + label, pack([float(first), float(end)], b""))
        b = a + len(ranges)
    with open(rec_paths(path)[0], "r+b") as f:
        header = encode_record(pack([float(a), float(b)], b""))
        if len(header) != header_size:  # cannot happen for positive a, b; guards the rewrite
            raise RuntimeError(f"RecordIO header changed size: {len(header)} != {header_size}")
        f.write(header)
    names = identities if identities is not None else [names[i] for i in range(len(ranges))]
    with open(rec_paths(path)[0][:-4] + IDENTITIES_SUFFIX, "w") as f:
        f.writelines(f"{name}\n" for name in names)
    return a - 1


def read_idx(idx_path):
    """{key: offset} from a `.idx` file; raises ValueError naming a malformed line."""
    index = {}
    with open(idx_path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.split()
            try:
                key, offset = int(fields[0]), int(fields[1])
            except (ValueError, IndexError):
                raise ValueError(
                    f"{idx_path}:{lineno}: expected 'key<TAB>offset', got {line.rstrip()!r}"
                ) from None
            index[key] = offset
    return index


class RecSource(EncodedSource):
    """MXNet RecordIO `.rec`/`.idx` faces (MS1MV2/3, Glint360K, WebFace packs).

    Both the insightface header-record layout and plain keyed records are read (see the
    module docstring); identity names come from `PATH.identities.txt` when our writer made
    the pair, else the numeric label. Every record's framing, header and image header are
    checked on construction (one positional read per record). In `tf.data`, a batch of
    records is read by offset with `os.pread` inside one `tf.numpy_function` call; decoding
    stays in TensorFlow.

    Args:
        path: `PATH`, `PATH.rec` or `PATH.idx`.
        on_bad_image: "skip" or "fail".
        image_size: None or S (resize to S×S when decoding).
        max_pixels: header-checked size limit.
        check_images: False skips the image header checks and reads only each record's
            chunk header and IRHeader (framing and labels are still checked): a fast open
            for large packs.
        progress: optional callable(n) advanced per scanned record.
    """

    def __init__(
        self,
        path,
        on_bad_image="skip",
        image_size=None,
        max_pixels=DEFAULT_MAX_PIXELS,
        check_images=True,
        progress=None,
    ):
        validate_image_args(max_pixels, image_size)  # before a long scan
        self.rec_path, self.idx_path = rec_paths(path)
        for p in (self.rec_path, self.idx_path):
            if not os.path.isfile(p):
                raise ValueError(f"RecordIO source needs {p!r}, which does not exist.")
        name = f"rec:{path}"
        report = BadInputReport(name, on_bad_image)
        self._fd = os.open(self.rec_path, os.O_RDONLY)
        self._file_size = os.fstat(self._fd).st_size
        index = read_idx(self.idx_path)

        image_keys = sorted(index)
        self.layout = "plain"
        if 0 in index:
            try:
                flag, label, _, _, _ = unpack(self._read_header(index[0]))
            except RecordError:
                flag = -1  # an unreadable record 0 is reported below as an image record
            if flag > 0:
                self.layout = "insightface"
                a = int(label[0])
                image_keys = list(range(1, a))

        offsets, spans, raw_labels, shapes = [], [], [], set()
        for key in image_keys:
            where = f"{self.rec_path}@key={key}"
            if key not in index:
                report.skip(where, "idx_out_of_range", "image key missing from the .idx")
                continue
            offset = index[key]
            where = f"{self.rec_path}@key={key},offset={offset}"
            if progress is not None:
                progress(1)
            if not 0 <= offset < self._file_size:
                report.skip(where, "idx_out_of_range", f"file has {self._file_size} bytes")
                continue
            try:
                if check_images:
                    payload, span = read_record(self._fd, offset, self._file_size)
                else:
                    payload, span = read_record_head(self._fd, offset, self._file_size)
                flag, label, _, _, image = unpack(payload)
                raw = float(label if flag == 0 else label[0])
                if raw < 0 or raw != int(raw):
                    raise RecordError("bad_record", f"label {raw} is not a non-negative integer")
                if not image:
                    raise RecordError("empty_file", "record holds no image bytes")
                if check_images:
                    (_, width, height, _), notes = check_bytes(image, "", max_pixels)
                    shapes.add((height, width))
                    for note in notes:
                        report.note(where, note)
            except (RecordError, ImageCheckError) as e:
                report.skip(where, e.reason, e.detail)
                continue
            offsets.append(offset)
            spans.append(span)
            raw_labels.append(int(raw))

        names = {}
        names_path = self.rec_path[:-4] + IDENTITIES_SUFFIX
        if os.path.isfile(names_path):
            with open(names_path) as f:
                names = dict(enumerate(line.rstrip("\n") for line in f))
        labels, identities = compact_labels(raw_labels, names)
        self._offsets = np.array(offsets, np.int64)
        self._spans = np.array(spans, np.int64)
        self.raw_labels = np.array(raw_labels, np.int64)
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

    def _read_header(self, offset):
        if not 0 <= offset < self._file_size:
            raise RecordError("idx_out_of_range", f"key 0 offset {offset}")
        return read_record(self._fd, offset, self._file_size)[0]

    def row_name(self, row):
        return f"{self.rec_path}@offset={self._offsets[row]}"

    def read_encoded(self, rows):
        out = []
        for row in rows:
            buffer = os.pread(self._fd, int(self._spans[row]), int(self._offsets[row]))
            out.append(unpack(split_chunks(buffer))[4])
        return out

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None
