"""`DlibReader`: NumPy reader of dlib's `serialize()` byte format (no dlib needed).

The primitives, as written by `dlib/serialize.h`, `dlib/float_details.h` and
`dlib/dnn/tensor.h`:

- integers: one control byte (low 4 bits: number of value bytes that follow, bit 0x80: the
  value is negative) and then the magnitude in little-endian bytes;
- floats: a `float_details` pair, the mantissa (int64) and the exponent (int16) as two such
  integers, value = mantissa · 2^exponent (exponents 32000/32001/32002 are +inf/−inf/NaN);
- strings: the length as an integer, then the bytes;
- bools: the ASCII byte '1' or '0';
- tensors (`resizable_tensor`, version 2): version, num_samples, k, nr, nc as integers and
  then num_samples·k·nr·nc little-endian IEEE float32 values in [n][k][nr][nc] order;
- alias tensors (a view into a layer's parameter tensor, version 1): the four sizes only.
"""

import numpy as np

_INF, _NINF, _NAN = 32000, 32001, 32002


class DlibFormatError(ValueError):
    """The bytes are not what dlib's serialisation would have written at that offset."""


class DlibReader:
    """Sequential reader over the bytes of one dlib-serialised object.

    Args:
        data: the file contents (`bytes`).
        source: a name for error messages (usually the file path).

    Every read advances `offset`; a read past the end or an unexpected value raises
    `DlibFormatError` naming `source` and the byte offset.

    Example:
    >>> reader = DlibReader(bytes([0x01, 0x05, 0x81, 0x03, 0x01, 0x02]) + b"hi")
    >>> reader.read_int(), reader.read_int(), reader.read_string()
    (5, -3, 'hi')
    """

    def __init__(self, data, source="<bytes>"):
        self.data = memoryview(data)
        self.source = source
        self.offset = 0

    def error(self, message):
        return DlibFormatError(f"{self.source}: {message} (at byte {self.offset})")

    def _take(self, n):
        if n < 0 or self.offset + n > len(self.data):
            raise self.error(f"unexpected end of data: needed {n} more bytes")
        start = self.offset
        self.offset += n
        return self.data[start : self.offset]

    def at_end(self):
        return self.offset == len(self.data)

    def read_int(self):
        """A signed or unsigned integer (dlib's `pack_int`)."""
        control = self._take(1)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            self.offset -= 1
            raise self.error(f"invalid integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def read_float(self):
        """A float written through `float_details` (mantissa, exponent)."""
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent == _INF:
            return float("inf")
        if exponent == _NINF:
            return float("-inf")
        if exponent == _NAN:
            return float("nan")
        return float(np.ldexp(float(mantissa), exponent))

    def read_string(self):
        size = self.read_int()
        raw = bytes(self._take(size))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            self.offset -= size
            raise self.error(f"expected an ASCII string, found {raw[:16]!r}") from None

    def read_bool(self):
        byte = self._take(1)[0]
        if byte not in (ord("0"), ord("1")):
            self.offset -= 1
            raise self.error(f"expected a bool ('0' or '1'), found byte 0x{byte:02x}")
        return byte == ord("1")

    def expect_string(self, expected):
        start = self.offset
        found = self.read_string()
        if found != expected:
            self.offset = start
            raise self.error(f"expected {expected!r}, found {found!r}")

    def expect_int(self, expected, what):
        start = self.offset
        found = self.read_int()
        if found != expected:
            self.offset = start
            raise self.error(f"expected {what} {expected}, found {found}")

    def read_tensor(self):
        """A `resizable_tensor` (version 2) → float32 array [num_samples, k, nr, nc]."""
        self.expect_int(2, "tensor version")
        shape = tuple(self.read_int() for _ in range(4))
        if any(s < 0 for s in shape):
            raise self.error(f"negative tensor size {shape}")
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def read_alias_tensor(self):
        """An `alias_tensor` (version 1) → its shape (num_samples, k, nr, nc)."""
        self.expect_int(1, "alias_tensor version")
        return tuple(self.read_int() for _ in range(4))


def decode_ints(data, source="<bytes>"):
    """Every integer of `data`, a byte string written only with dlib's `pack_int` (integers,
    and floats as their (mantissa, exponent) integer pairs) → int64 array.

    A shape predictor's 9 MB is ~3 M such integers; finding where each starts is inherently
    sequential (one control byte gives the next offset), so only that walk is a Python loop
    and the values are assembled with NumPy (~1 s together, against ~3 s for `read_int` each).
    Raises `DlibFormatError` naming `source` and the offset of an invalid control byte or of
    a value cut off by the end of the data.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    n = len(raw)
    starts = []
    append = starts.append
    pos = 0
    while pos < n:
        append(pos)
        pos += 1 + (data[pos] & 0x0F)
    starts = np.asarray(starts, dtype=np.int64)
    control = raw[starts]
    sizes = (control & 0x0F).astype(np.int64)
    bad = np.flatnonzero((control & 0x70) | (sizes > 8))
    if len(bad):
        at = int(starts[bad[0]])
        raise DlibFormatError(
            f"{source}: invalid integer control byte 0x{raw[at]:02x} (at byte {at})"
        )
    if pos != n:
        raise DlibFormatError(
            f"{source}: unexpected end of data inside the integer at byte {int(starts[-1])}"
        )
    padded = np.concatenate([raw, np.zeros(8, np.uint8)]).astype(np.uint64)
    values = np.zeros(len(starts), dtype=np.uint64)
    for k in range(int(sizes.max(initial=0))):
        has = sizes > k
        values[has] |= padded[starts[has] + 1 + k] << np.uint64(8 * k)
    if np.any(values[sizes == 8] >> np.uint64(63)):
        raise DlibFormatError(f"{source}: integer magnitude does not fit in int64")
    values = values.astype(np.int64)
    values[control >= 0x80] *= -1
    return values, starts


class DlibIntStream:
    """Sequential reader over `decode_ints` output: dlib objects made only of integers and
    floats (vectors, `matrix<float>`, `vector<float,2>`, structs of those).

    Errors are `DlibFormatError`s naming `source` and the byte offset of the integer read.

    Example:
    >>> s = DlibIntStream(bytes([0x01, 0x02, 0x01, 0x03, 0x81, 0x01]))
    >>> s.read_int(), s.read_floats(1).tolist()
    (2, [1.5])
    """

    def __init__(self, data, source="<bytes>"):
        self.source = source
        self.values, self.starts = decode_ints(data, source)
        self.index = 0
        self.size = len(data)

    def error(self, message):
        at = int(self.starts[self.index]) if self.index < len(self.starts) else self.size
        return DlibFormatError(f"{self.source}: {message} (at byte {at})")

    def at_end(self):
        return self.index == len(self.values)

    def read_ints(self, count):
        if count < 0 or self.index + count > len(self.values):
            raise self.error(f"unexpected end of data: needed {count} more integers")
        out = self.values[self.index : self.index + count]
        self.index += count
        return out

    def read_int(self):
        return int(self.read_ints(1)[0])

    def expect_int(self, expected, what):
        found = int(self.values[self.index]) if self.index < len(self.values) else None
        if found != expected:
            raise self.error(f"expected {what} {expected}, found {found}")
        self.index += 1

    def read_size(self, what, maximum):
        """A container size (`std::vector` length) in [0, maximum]."""
        if self.index < len(self.values) and 0 <= self.values[self.index] <= maximum:
            return self.read_int()
        found = int(self.values[self.index]) if self.index < len(self.values) else None
        raise self.error(f"expected {what} in [0, {maximum}], found {found}")

    def read_floats(self, count):
        """`count` floats (each a `float_details` mantissa/exponent pair) → float32 array."""
        pairs = self.read_ints(2 * count).reshape(count, 2)
        try:
            return self.floats(pairs)
        except DlibFormatError:
            self.index -= 2 * count
            raise

    def floats(self, pairs):
        """float32 values of int [..., 2] (mantissa, exponent) pairs already read."""
        mantissa, exponent = pairs[..., 0], pairs[..., 1]
        special = exponent >= _INF
        if np.any(special & (exponent > _NAN)) or np.any(np.abs(exponent[~special]) > 2000):
            raise self.error("invalid float exponent")
        with np.errstate(over="ignore"):
            values = np.ldexp(mantissa.astype(np.float64), np.where(special, 0, exponent))
        values[exponent == _INF] = np.inf
        values[exponent == _NINF] = -np.inf
        values[exponent == _NAN] = np.nan
        return values.astype(np.float32)

    def read_float_column(self, what, length=None):
        """A `matrix<float,0,1>` (rows and columns written negated, then the values)."""
        nr, nc = -int(self.values[self.index]), -int(self.values[self.index + 1])
        if nc != 1 or nr < 0 or (length is not None and nr != length):
            want = f"{length}×1" if length is not None else "a column"
            raise self.error(f"expected {what} as {want} matrix, found {nr}×{nc}")
        self.index += 2
        return self.read_floats(nr)
