"""insightface verification packs (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`, …).

A pack is a pickle of `(bins, issame_list)`: `bins` holds 2 × N encoded images (JPEG/PNG
bytes in older, Python-2-era packs; numpy uint8 arrays of the encoded bytes in newer
ones), and images `2i`, `2i + 1` form pair `i`, with `issame_list[i]` its label. Pairs are
in LFW fold order (lfw.bin: 12,000 images, 6,000 pairs, 10 folds).

`pickle.load` runs any callable a file names, so packs are read with `SafeUnpickler`,
which resolves only the globals numpy needs to rebuild arrays and scalars and refuses
everything else with an error naming the global.
"""

import io
import os
import pickle

import numpy as np

from tfface.eval import embed
from tfface.eval import verification

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles written by Python 3 store bytes as `_codecs.encode(str, "latin1")`;
    # only that codec is let through.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(
            f"_codecs.encode is only allowed as encode(str, 'latin1'). Received encoding "
            f"{encoding!r} for a {type(text).__name__}"
        )
    return text.encode("latin1")


# Resolved to objects here (never imported by name at load time), so `numpy.core` aliases
# work on numpy 2 without touching the deprecated module.
_ALLOWED_GLOBALS = {}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED_GLOBALS[(_module, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED_GLOBALS[(_module, "scalar")] = _multiarray.scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED_GLOBALS[(_module, "_frombuffer")] = _numeric._frombuffer
_ALLOWED_GLOBALS[("numpy", "ndarray")] = np.ndarray
_ALLOWED_GLOBALS[("numpy", "dtype")] = np.dtype
_ALLOWED_GLOBALS[("_codecs", "encode")] = _latin1_encode
ALLOWED_GLOBALS = tuple(sorted(f"{m}.{n}" for m, n in _ALLOWED_GLOBALS))


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that only resolves numpy's array/dtype/scalar reconstruction globals.

    Args:
        file: binary file object.
        source: how errors name the file.
        **kwargs: passed to `pickle.Unpickler` (e.g. `encoding="bytes"`).
    """

    def __init__(self, file, source="<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"{self.source}: refusing to load forbidden global '{module}.{name}'. A "
                f"verification pack may only reference {', '.join(ALLOWED_GLOBALS)}; this "
                "file may be malicious or not an insightface .bin pack."
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(
            f"{self.source}: persistent ids are not allowed. Received: {pid!r}"
        )


def safe_loads(data, source="<pickle>"):
    """Unpickles `data` with `SafeUnpickler` (Python-2 `str` becomes `bytes`)."""
    return SafeUnpickler(io.BytesIO(data), source=source, encoding="bytes").load()


def load_bin(path):
    """Reads a pack safely.

    Returns:
        (bins, issame): list of 2N `bytes` (encoded images) and bool array [N].
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        obj = SafeUnpickler(f, source=path, encoding="bytes").load()
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise ValueError(
            f"{path}: expected a pickled (bins, issame_list) pair. Received: "
            f"{type(obj).__name__}{f' of length {len(obj)}' if hasattr(obj, '__len__') else ''}"
        )
    raw_bins, raw_issame = obj
    for what, value in (("bins", raw_bins), ("issame_list", raw_issame)):
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise ValueError(f"{path}: {what} must be a list. Received: {type(value).__name__}")
    if len(raw_issame) == 0:
        raise ValueError(f"{path}: the pack holds no pairs.")
    bins = []
    for i, b in enumerate(raw_bins):
        if isinstance(b, (bytes, bytearray)):
            bins.append(bytes(b))
        elif isinstance(b, np.ndarray) and b.dtype == np.uint8 and b.ndim == 1:
            bins.append(b.tobytes())
        else:
            raise ValueError(
                f"{path}: bins[{i}] must be encoded image bytes or a 1-D uint8 array. "
                f"Received: {type(b).__name__} {getattr(b, 'dtype', '')}"
            )
    issame = []
    for i, s in enumerate(raw_issame):
        if isinstance(s, (bool, np.bool_)) or (isinstance(s, (int, np.integer)) and s in (0, 1)):
            issame.append(bool(s))
        else:
            raise ValueError(f"{path}: issame_list[{i}] must be a boolean. Received: {s!r}")
    if len(bins) != 2 * len(issame):
        raise ValueError(
            f"{path}: {len(bins)} images for {len(issame)} pairs; a pack holds exactly two "
            "images per pair."
        )
    return bins, np.array(issame, dtype=bool)


def write_bin(path, bins, issame, as_numpy=False, protocol=4):
    """Writes a pack: `bins` (2N encoded images as bytes) and `issame` (N booleans).

    Args:
        as_numpy: store each image as a uint8 numpy array (newer packs) instead of bytes.
        protocol: pickle protocol.
    """
    bins = [bytes(b) for b in bins]
    issame = [bool(s) for s in issame]
    if len(bins) != 2 * len(issame):
        raise ValueError(f"Need two images per pair. Received {len(bins)} for {len(issame)}")
    if as_numpy:
        bins = [np.frombuffer(b, dtype=np.uint8).copy() for b in bins]
    with open(path, "wb") as f:
        pickle.dump((bins, issame), f, protocol=protocol)


def evaluate_bin(
    embed_fn,
    path,
    image_size=112,
    batch_size=64,
    flip=True,
    num_folds=10,
    far_target=1e-3,
    metric="cosine",
    progress=True,
):
    """insightface-style verification on a `.bin` pack.

    Each image is decoded to RGB (resized to `image_size` if needed), embedded as
    normalise(f(x) + f(flip(x))) and pair scores go through `verification.evaluate` with
    `num_folds` folds in pack order.

    Args:
        embed_fn: float32 images [N, S, S, 3] with pixels 0–255 → embeddings [N, D]. The
            model normalises pixels itself (insightface: ((x/255) − 0.5)/0.5, which is
            `ImageNormalization("insightface")` in tfface's embedding models). To match
            insightface exactly, `embed_fn` should return the backbone's unnormalised
            embeddings (insightface sums those before normalising).
        path: the pack.
        image_size: square input size of the model.
        batch_size: images per `embed_fn` call.
        flip: add the flipped image's embedding (insightface default).
        num_folds, far_target, metric: as `verification.evaluate`.
        progress: as `embed.embed_images`.

    Returns:
        A `VerificationResult`.
    """
    path = os.fspath(path)
    bins, issame = load_bin(path)
    emb = embed.embed_images(
        embed_fn,
        lambda i: embed.decode_image(bins[i], image_size, source=f"{path} image {i}"),
        len(bins),
        batch_size=batch_size,
        flip=flip,
        progress=progress,
    )
    return verification.evaluate(
        emb[0::2], emb[1::2], issame, num_folds=num_folds, far_target=far_target, metric=metric
    )
