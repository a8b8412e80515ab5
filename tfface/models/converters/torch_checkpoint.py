"""Reads PyTorch `.pt` / `.pth` state dicts with NumPy only (PyTorch is never imported).

A file written by `torch.save` is either a zip archive (PyTorch >= 1.6: `<name>/data.pkl`
plus one raw little-endian file per storage under `<name>/data/`) or the legacy stream
(magic number, protocol, system info, the pickled object, the storage keys, then each
storage as an int64 element count and its raw bytes). In both, the pickle names tensors as
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and storages as
persistent ids `("storage", torch.FloatStorage, key, location, numel, ...)`.

`pickle.load` would run any callable a file names, so `read_torch_state_dict` resolves only
`collections.OrderedDict`, the tensor/parameter rebuild functions and the storage types,
each to a NumPy stand-in, and refuses every other global with an error naming it.
"""

import collections
import os
import pickle
import struct
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands in for `torch.<X>Storage`: only its dtype is used."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[storage_offset])
    itemsize = storage.dtype.itemsize
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {size} and stride {stride} disagree")
    if any(n == 0 for n in size):
        return np.zeros(size, storage.dtype)
    needed = storage_offset + 1 + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if needed > storage.size:
        raise pickle.UnpicklingError(
            f"a tensor of size {size} and stride {stride} at offset {storage_offset} reads "
            f"past its storage of {storage.size} elements"
        )
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=[s * itemsize for s in stride]
    )
    return np.array(view)  # a contiguous copy, independent of the storage buffer


def _rebuild_parameter(data, *unused):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in _STORAGE_DTYPES})


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, file, source, load_storage):
        super().__init__(file)
        self.source = source
        self.load_storage = load_storage

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"{self.source}: refusing to load global '{module}.{name}': a state dict may "
                f"only reference {', '.join(sorted(f'{m}.{n}' for m, n in _ALLOWED))}. The "
                "file may hold more than a state dict (a whole pickled model or optimizer), "
                "or be malicious."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"{self.source}: unknown persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(
                f"{self.source}: unsupported storage type {storage_type!r} (supported: "
                f"{', '.join(_STORAGE_DTYPES)})"
            )
        return self.load_storage(key, storage_type.dtype, numel)


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise ValueError(
                f"{path}: a torch zip archive holds exactly one data.pkl. Found: {pkl}"
            )
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            byteorder = archive.read(f"{prefix}byteorder").decode().strip()
        storages = {}

        def load_storage(key, dtype, numel):
            if key not in storages:
                raw = archive.read(f"{prefix}data/{key}")
                order = "<" if byteorder == "little" else ">"
                array = np.frombuffer(raw, dtype=dtype.newbyteorder(order))
                if array.size < numel:
                    raise pickle.UnpicklingError(
                        f"{path}: storage {key} holds {array.size} elements, expected {numel}"
                    )
                storages[key] = array.astype(dtype)
            return storages[key]

        with archive.open(pkl[0]) as f:
            return _TorchUnpickler(f, path, load_storage).load()


def _read_legacy(path):
    with open(path, "rb") as f:
        header = _TorchUnpickler(f, path, None)
        magic = header.load()
        if magic != _LEGACY_MAGIC:
            raise ValueError(
                f"{path}: not a PyTorch file (neither a zip archive nor the legacy format)."
            )
        header.load()  # protocol version
        header.load()  # system info (endianness, type sizes)
        pending = {}

        def load_storage(key, dtype, numel):
            pending.setdefault(key, dtype)
            return _Deferred(key)

        obj = _LegacyUnpickler(f, path, load_storage).load()
        keys = _TorchUnpickler(f, path, None).load()
        storages = {}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            dtype = np.dtype(pending.get(str(key), np.uint8))
            raw = f.read(numel * dtype.itemsize)
            if len(raw) != numel * dtype.itemsize:
                raise ValueError(f"{path}: truncated storage {key}")
            storages[str(key)] = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    return _resolve(obj, storages)


class _Deferred:
    """A legacy-format storage whose bytes come after the pickle."""

    def __init__(self, key):
        self.key = key


class _DeferredTensor:
    def __init__(self, args):
        self.args = args


def _resolve(obj, storages):
    if isinstance(obj, _DeferredTensor):
        storage, *rest = obj.args
        return _rebuild_tensor(storages[storage.key], *rest)
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v, storages)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, storages) for v in obj)
    return obj


def read_torch_state_dict(path):
    """Reads a `torch.save`d state dict into `{name: numpy array}` without PyTorch.

    Accepts a plain state dict or a training checkpoint dict that nests one under
    `state_dict`, `state_dict_backbone` (arcface_torch), `model` or `net`; strips the
    `module.` prefix DataParallel adds. Raises `ValueError` naming the file for anything
    else.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"No such PyTorch file. Received: path={path!r}")
    try:
        if zipfile.is_zipfile(path):
            obj = _read_zip(path)
        else:
            obj = _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{path}: cannot read it as a PyTorch state dict: {e}") from None
    if isinstance(obj, dict):
        for key in ("state_dict_backbone", "state_dict", "model", "net"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ValueError(
            f"{path}: expected a state dict (a mapping of names to tensors). Received: "
            f"{type(obj).__name__}"
        )
    state = {}
    for name, value in obj.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(
                f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor: expected a "
                "state dict"
            )
        state[name[len("module.") :] if name.startswith("module.") else name] = value
    return state


# The legacy format reads storages after the pickle, so tensors are rebuilt in a second pass.
_LEGACY_ALLOWED = dict(_ALLOWED)
_LEGACY_ALLOWED[("torch._utils", "_rebuild_tensor_v2")] = lambda *args: _DeferredTensor(args)


class _LegacyUnpickler(_TorchUnpickler):
    def find_class(self, module, name):
        if (module, name) in _LEGACY_ALLOWED:
            return _LEGACY_ALLOWED[(module, name)]
        return super().find_class(module, name)
