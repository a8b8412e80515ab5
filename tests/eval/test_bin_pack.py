"""Tests for tfface.eval.bin_pack: safe loading, both entry encodings, evaluation."""

import _codecs
import io
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from tfface.eval import bin_pack


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _pack_images(num_pairs=20, size=8, seed=0):
    """Pair i: images 2i, 2i+1; matched pairs show the same random pattern."""
    rng = np.random.default_rng(seed)
    issame = np.tile([True, False], num_pairs // 2)
    images = []
    for same in issame:
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        b = a if same else rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        images += [a, b]
    return images, issame


@pytest.mark.parametrize("as_numpy", [False, True])
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_write_then_load(tmp_path, as_numpy, protocol):
    images, issame = _pack_images()
    bins = [_png(x) for x in images]
    path = tmp_path / "p.bin"
    bin_pack.write_bin(path, bins, issame, as_numpy=as_numpy, protocol=protocol)
    loaded, loaded_issame = bin_pack.load_bin(path)
    assert loaded == bins
    np.testing.assert_array_equal(loaded_issame, issame)


def test_numpy_bool_issame_and_python2_style_str(tmp_path):
    # Newer packs may hold numpy bools; protocol 2 exercises _codecs.encode for bytes.
    bins = [_png(np.zeros((4, 4, 3), np.uint8))] * 2
    path = tmp_path / "p.bin"
    path.write_bytes(pickle.dumps((bins, [np.bool_(True)]), protocol=2))
    loaded, issame = bin_pack.load_bin(path)
    assert loaded == bins and issame.tolist() == [True]


def _py2_string(data):
    """A Python 2 `str` as Python 2's pickle writes it (BINSTRING, 4-byte length)."""
    return b"T" + len(data).to_bytes(4, "little") + data


def test_python2_pack_with_str_images(tmp_path):
    """Old packs (faces_emore/lfw.bin) were pickled by Python 2: images are `str`.

    Hand-assembled protocol-2 opcodes: PROTO 2, EMPTY_LIST, MARK, two BINSTRINGs, APPENDS,
    EMPTY_LIST, MARK, NEWTRUE, APPENDS, TUPLE2, STOP.
    """
    images = [_png(np.full((4, 4, 3), v, np.uint8)) for v in (10, 200)]
    payload = b"\x80\x02](" + b"".join(_py2_string(x) for x in images) + b"e](\x88e\x86."
    assert pickle.loads(payload, encoding="latin1")[0][0] == images[0].decode("latin1")
    path = tmp_path / "py2.bin"
    path.write_bytes(payload)
    bins, issame = bin_pack.load_bin(path)
    assert bins == images and issame.tolist() == [True]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_rejected_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([_Evil(marker)], [True])))
    with pytest.raises(pickle.UnpicklingError, match=r"forbidden global '(posix|nt|os)\.system'"):
        bin_pack.load_bin(path)
    assert not marker.exists()
    # plain pickle would have run it: the fixture is a real attack
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    "payload,match",
    [
        (pickle.dumps((b"x", [True])[0]), "expected a pickled"),
        (pickle.dumps(([b"a"], [True])), "2 images per pair|1 images for 1 pairs"),
        (pickle.dumps(([1, 2], [True])), r"bins\[0\] must be encoded"),
        (pickle.dumps(([b"a", b"b"], ["yes"])), r"issame_list\[0\] must be a boolean"),
        (pickle.dumps((set(), [])), "bins must be a list"),
        (pickle.dumps(([], [])), "no pairs"),
    ],
)
def test_malformed_packs(tmp_path, payload, match):
    path = tmp_path / "bad.bin"
    path.write_bytes(payload)
    with pytest.raises((ValueError, pickle.UnpicklingError), match=match):
        bin_pack.load_bin(path)


class _Rot13:
    def __reduce__(self):
        return (_codecs.encode, ("abc", "rot13"))


def test_codecs_encode_only_latin1():
    evil = pickle.dumps(_Rot13(), protocol=2)
    assert b"_codecs" in evil and b"rot13" in evil
    with pytest.raises(pickle.UnpicklingError, match="only allowed as encode\\(str, 'latin1'\\)"):
        bin_pack.safe_loads(evil)


def test_evaluate_bin_flip_and_pixels(tmp_path):
    """Identical images for matched pairs → perfect verification; the embedding function
    sees float32 0–255 pixels at image_size and, with flip, also the mirrored batch."""
    images, issame = _pack_images(num_pairs=40, size=8)
    path = tmp_path / "p.bin"
    bin_pack.write_bin(path, [_png(x) for x in images], issame, as_numpy=True)
    seen = []

    def embed_fn(x):
        seen.append(x)
        assert x.dtype == np.float32 and x.shape[1:] == (8, 8, 3)
        return x.reshape(x.shape[0], -1) - 127.5

    reports = []
    result = bin_pack.evaluate_bin(
        embed_fn, path, image_size=8, batch_size=16, progress=lambda d, t: reports.append(d)
    )
    assert result.accuracy_mean == 1.0 and result.num_pairs == 40
    assert reports[-1] == 80
    assert seen[0].max() > 1.0  # raw 0–255 pixels, not normalised
    np.testing.assert_array_equal(seen[1], seen[0][:, :, ::-1, :])  # flipped batch
    assert len(seen) == 2 * 5  # 80 images / 16 per batch, two calls each


def test_evaluate_bin_resizes(tmp_path):
    images, issame = _pack_images(num_pairs=20, size=12)
    # Pair 0 (a matched pair) shows a known image: red rises 20 per column, green 20 per
    # row, blue is constant.
    ramp = np.arange(12) * 20
    known = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 77), -1).astype(np.uint8)
    images[0] = images[1] = known
    path = tmp_path / "p.bin"
    bin_pack.write_bin(path, [_png(x) for x in images], issame)
    shapes = set()
    seen = []

    def embed_fn(x):
        shapes.add(x.shape[1:])
        seen.append(x)
        return x.reshape(x.shape[0], -1) - 127.5

    bin_pack.evaluate_bin(embed_fn, path, image_size=6, flip=False, progress=None)
    assert shapes == {(6, 6, 3)}
    seen = np.concatenate(seen)
    assert seen.shape == (40, 6, 6, 3)
    # Halving a linear ramp: output pixel k sits between input pixels 2k and 2k+1, so any
    # linear interpolation gives 40k + 10 away from the border (nearest: 40k or 40k + 20).
    # At the border PIL's filter weighs only the pixels inside the image.
    inner = 40 * np.arange(1, 5) + 10
    np.testing.assert_array_equal(seen[0][:, 1:5, 0], np.broadcast_to(inner, (6, 4)))
    np.testing.assert_array_equal(seen[0][1:5, :, 1], np.broadcast_to(inner[:, None], (4, 6)))
    np.testing.assert_array_equal(seen[0][..., 2], 77)
    # Every image, in pack order: PIL's bilinear resize of the stored pixels, unnormalised.
    for x, image in zip(seen, images, strict=True):
        expected = np.asarray(Image.fromarray(image).resize((6, 6), Image.BILINEAR))
        np.testing.assert_array_equal(x, expected)
