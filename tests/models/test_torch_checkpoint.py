"""`read_torch_state_dict`: PyTorch's zip format read with NumPy, untrusted globals refused.

Files written by torch itself are read in the parity tests (test_convert_*.py). Here the
files are built by hand in torch's zip layout: `archive/data.pkl` names tensors through
`torch._utils._rebuild_tensor_v2` and storages through persistent ids, and
`archive/data/<key>` holds each storage's raw little-endian bytes. A stand-in `torch`
module lets `pickle` write those global names without PyTorch installed.
"""

import collections
import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from tfface.models.converters.torch_checkpoint import read_torch_state_dict


class _Tensor:
    def __init__(self, key, array, offset=0, shape=None, strides=None):
        self.key, self.array = key, array
        self.offset = offset
        self.shape = array.shape if shape is None else shape
        self.strides = strides


@pytest.fixture
def fake_torch(monkeypatch):
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")

    def _rebuild_parameter(*args):
        raise AssertionError("never called while pickling")

    for fn in (_rebuild_tensor_v2, _rebuild_parameter):
        fn.__module__, fn.__qualname__ = utils.__name__, fn.__name__
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    utils._rebuild_parameter = _rebuild_parameter
    torch.FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def _write_zip(path, state, fake_torch):
    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and obj and obj[0] == "__storage__":
                return ("storage", fake_torch.FloatStorage, obj[1], "cpu", obj[2])
            return None

        def reducer_override(self, obj):
            if isinstance(obj, _Tensor):
                storages[obj.key] = obj.array
                strides = obj.strides or tuple(
                    int(np.prod(obj.shape[i + 1 :])) for i in range(len(obj.shape))
                )
                storage = ("__storage__", obj.key, obj.array.size)
                args = (
                    storage,
                    obj.offset,
                    tuple(obj.shape),
                    strides,
                    False,
                    collections.OrderedDict(),
                )
                return fake_torch._utils._rebuild_tensor_v2, args
            return NotImplemented

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", "little")
        for key, array in storages.items():
            zf.writestr(f"archive/data/{key}", array.astype("<f4").tobytes())


def test_reads_tensors_views_and_module_prefix(tmp_path, fake_torch):
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    base = np.arange(12, dtype=np.float32)
    state = collections.OrderedDict(
        [
            ("module.conv.weight", _Tensor("0", conv)),
            # a transposed view: shape (4, 3), strides (1, 4) over a 3×4 storage at offset 0
            ("module.fc.weight", _Tensor("1", base, shape=(4, 3), strides=(1, 4))),
            # a slice at offset 5
            ("module.fc.bias", _Tensor("1", base, offset=5, shape=(2,), strides=(1,))),
        ]
    )
    path = tmp_path / "model.pth"
    _write_zip(path, {"state_dict_backbone": state, "epoch": 3}, fake_torch)
    out = read_torch_state_dict(path)
    assert list(out) == ["conv.weight", "fc.weight", "fc.bias"]
    np.testing.assert_array_equal(out["conv.weight"], conv)
    np.testing.assert_array_equal(out["fc.weight"], base.reshape(3, 4).T)
    np.testing.assert_array_equal(out["fc.bias"], [5.0, 6.0])


def test_refuses_other_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
    with pytest.raises(ValueError, match=r"refusing to load global '(posix|nt)\.system'"):
        read_torch_state_dict(path)


def test_reports_storage_past_its_end(tmp_path, fake_torch):
    state = {"w": _Tensor("0", np.zeros(4, np.float32), shape=(8,), strides=(1,))}
    path = tmp_path / "short.pth"
    _write_zip(path, state, fake_torch)
    with pytest.raises(ValueError, match="reads past its storage"):
        read_torch_state_dict(path)


def test_rejects_non_torch_files(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(pickle.dumps(123))
    with pytest.raises(ValueError, match="x.pth"):
        read_torch_state_dict(path)
    with pytest.raises(ValueError, match="No such PyTorch file"):
        read_torch_state_dict(tmp_path / "missing.pth")
