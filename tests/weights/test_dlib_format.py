"""DlibReader against bytes written by an independent encoder of dlib's serialize.h rules."""

import math
import struct

import numpy as np
import pytest

from tfface.weights.dlib_format import DlibFormatError
from tfface.weights.dlib_format import DlibReader


def pack_int(value):
    """dlib's `pack_int`: control byte (size | 0x80 if negative), then little-endian bytes."""
    magnitude = abs(value)
    body = bytearray()
    while True:
        body.append(magnitude & 0xFF)
        magnitude >>= 8
        if magnitude == 0:
            break
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + bytes(body)


def pack_float(value):
    """dlib's `float_details` of a float32: frexp → 24-bit mantissa, zero bytes shifted off."""
    if math.isinf(value):
        return pack_int(0) + pack_int(32000 if value > 0 else 32001)
    if math.isnan(value):
        return pack_int(0) + pack_int(32002)
    fraction, exponent = math.frexp(value)
    mantissa, exponent = int(fraction * (1 << 24)), exponent - 24
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return pack_int(mantissa) + pack_int(exponent)


def pack_string(text):
    return pack_int(len(text)) + text.encode("ascii")


def pack_tensor(array):
    array = np.asarray(array, dtype="<f4")
    return pack_int(2) + b"".join(pack_int(s) for s in array.shape) + array.tobytes()


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, 4736, 2**31 + 5, -1, -300])
def test_integers(value):
    data = pack_int(value) + pack_int(7)
    reader = DlibReader(data)
    assert reader.read_int() == value
    assert reader.read_int() == 7
    assert reader.at_end()


@pytest.mark.parametrize("value", [0.6, 0.04, 122.782, -104.298, 1.0, 0.0, 3.5e-20])
def test_floats_round_trip_at_float32_precision(value):
    expected = struct.unpack("<f", struct.pack("<f", value))[0]
    assert DlibReader(pack_float(expected)).read_float() == expected


def test_special_floats():
    reader = DlibReader(pack_float(math.inf) + pack_float(-math.inf) + pack_float(math.nan))
    assert reader.read_float() == math.inf
    assert reader.read_float() == -math.inf
    assert math.isnan(reader.read_float())


def test_strings_bools_tensors_and_alias_tensors():
    tensor = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 7
    data = (
        pack_string("con_4")
        + b"10"
        + pack_tensor(tensor)
        + pack_int(1)
        + b"".join(pack_int(s) for s in (32, 3, 7, 7))
    )
    reader = DlibReader(data)
    assert reader.read_string() == "con_4"
    assert reader.read_bool() is True
    assert reader.read_bool() is False
    np.testing.assert_array_equal(reader.read_tensor(), tensor)
    assert reader.read_alias_tensor() == (32, 3, 7, 7)
    assert reader.at_end()


def test_errors_name_the_source_and_offset():
    with pytest.raises(DlibFormatError, match=r"model\.dat: unexpected end of data.*at byte 1"):
        DlibReader(bytes([0x02, 0x01]), "model.dat").read_int()
    with pytest.raises(DlibFormatError, match=r"expected 'relu_', found 'affine_'"):
        DlibReader(pack_string("affine_")).expect_string("relu_")
    with pytest.raises(DlibFormatError, match="tensor version"):
        DlibReader(pack_int(1) + pack_int(0) * 4).read_tensor()
    with pytest.raises(DlibFormatError, match="invalid integer control byte 0x31"):
        DlibReader(b"1").read_int()
    with pytest.raises(DlibFormatError, match="expected a bool"):
        DlibReader(b"x").read_bool()
    truncated = pack_tensor(np.ones((1, 1, 2, 2)))[:-3]
    with pytest.raises(DlibFormatError, match="needed 16 more bytes"):
        DlibReader(truncated).read_tensor()
