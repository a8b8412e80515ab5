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
