"""`EmbeddingCache`: raw per-image embeddings of one model on one IJB dataset, in an `.npz`.

IJB-C has 469k loose crops; embedding them (twice, with the flip) is the expensive part of
an IJB run, and pooling/scoring options (flip, norm and detector weighting, subsets) only
change what happens afterwards. The cache keeps, per image name, the landmarks it was
aligned with and the model's raw outputs for the crop and its mirror image; a later run
with the same model re-embeds only images it lacks (or whose landmarks changed), so
re-scoring needs no model and no TensorFlow at all.

A cache belongs to one model (its fingerprint: SHA-256 of the `.keras` file, or of a
SavedModel's `saved_model.pb`, `fingerprint.pb` and variables index), one dataset and one
crop size; opening it for another raises `CacheMismatchError` naming both. Files are
written atomically (a temporary file, then `os.replace`), without pickles.
"""

import hashlib
import os

import numpy as np

FORMAT = "tfface.ijb_embeddings.v1"
_SAVED_MODEL_FILES = ("saved_model.pb", "fingerprint.pb", "variables/variables.index")


class CacheMismatchError(ValueError):
    """The cache file was written for another model, dataset or crop size."""


def model_fingerprint(model_path):
    """ "sha256:<hex>" of a `.keras` file or a SavedModel directory's graph and variables
    index (their bytes, so a re-trained model saved to the same path differs)."""
    path = os.fspath(model_path)
    digest = hashlib.sha256()
    if os.path.isfile(path):
        files = [(os.path.basename(path), path)]
    elif os.path.isdir(path):
        files = [(name, os.path.join(path, name)) for name in _SAVED_MODEL_FILES]
        files = [(name, p) for name, p in files if os.path.isfile(p)]
        if not files:
            raise FileNotFoundError(f"{path!r} holds no saved_model.pb.")
    else:
        raise FileNotFoundError(f"No such model file or directory: {path!r}")
    for name, p in files:
        digest.update(name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


class EmbeddingCache:
    """Per-image raw embeddings (crop and mirrored crop) keyed by image name and landmarks.

    Args:
        path: the `.npz` file (need not exist yet).
        dataset: "IJBB" / "IJBC".
        fingerprint: `model_fingerprint(model)`.
        model: how the model was named (recorded only).

    Use `EmbeddingCache.open(...)`, then `lookup`, `add` and `save`.
    """

    def __init__(self, path, dataset, fingerprint, model=""):
        self.path = os.fspath(path)
        self.dataset = dataset
        self.fingerprint = fingerprint
        self.model = str(model)
        self.image_size = None
        self._names = np.zeros(0, dtype=str)
        self._landmarks = np.zeros((0, 5, 2), np.float32)
        self._embeddings = None
        self._flips = None
        self._index = {}
        self._pending = []

    @classmethod
    def open(cls, path, dataset, fingerprint, model=""):
        """Loads `path` if it exists (checking that it belongs to this model and dataset),
        else returns an empty cache that `save` will create."""
        cache = cls(path, dataset, fingerprint, model)
        if not os.path.exists(cache.path):
            return cache
        try:
            with np.load(cache.path, allow_pickle=False) as data:
                fields = {k: data[k] for k in data.files}
        except Exception as e:  # zipfile/OSError/ValueError for a damaged or foreign file
            raise CacheMismatchError(
                f"--cache {cache.path!r} is not a readable embedding cache "
                f"({type(e).__name__}: {e}). Delete it or pass another --cache."
            ) from e
        if str(fields.get("format", "")) != FORMAT:
            raise CacheMismatchError(
                f"--cache {cache.path!r} is not a tfface IJB embedding cache (format "
                f"{str(fields.get('format', 'missing'))!r}, expected {FORMAT!r})."
            )
        for key, want in (("dataset", dataset), ("fingerprint", fingerprint)):
            if str(fields[key]) != want:
                raise CacheMismatchError(
                    f"--cache {cache.path!r} was written for {key} {str(fields[key])!r} "
                    f"(model {str(fields['model'])!r}), not {want!r}. Pass another --cache "
                    "(or delete the file) to embed with this model."
                )
        cache.image_size = int(fields["image_size"])
        cache._names = fields["names"]
        cache._landmarks = fields["landmarks"]
        cache._embeddings = fields["embeddings"]
        cache._flips = fields["flip_embeddings"]
        cache._index = {name: k for k, name in enumerate(cache._names.tolist())}
        return cache

    def __len__(self):
        return len(self._index)

    def set_image_size(self, image_size):
        """Records the crop size; a cache written at another size raises."""
        if self.image_size is not None and self.image_size != int(image_size):
            raise CacheMismatchError(
                f"--cache {self.path!r} holds {self.image_size}×{self.image_size} crops' "
                f"embeddings, not {image_size}×{image_size}. Pass another --cache."
            )
        self.image_size = int(image_size)

    def lookup(self, names, landmarks):
        """Cache rows of `names` [N] (−1 where absent or aligned with other landmarks)."""
        rows = np.full(len(names), -1, dtype=np.int64)
        for k, name in enumerate(names):
            row = self._index.get(name, -1)
            if row >= 0 and np.array_equal(self._landmarks[row], landmarks[k]):
                rows[k] = row
        return rows

    def get(self, rows):
        """(embeddings, flip_embeddings) float32 [len(rows), D] of cache `rows`."""
        return self._embeddings[rows], self._flips[rows]

    def add(self, names, landmarks, embeddings, flip_embeddings):
        """Adds (or replaces) images; kept in memory until `save`."""
        self._pending.append(
            (
                np.asarray(names),
                np.asarray(landmarks, np.float32),
                np.asarray(embeddings, np.float32),
                np.asarray(flip_embeddings, np.float32),
            )
        )

    def save(self):
        """Merges the added images and writes the file atomically (nothing to add: no-op)."""
        if not self._pending:
            return
        if self.image_size is None:
            raise ValueError("EmbeddingCache.save: the crop size is not set (set_image_size).")
        names = np.concatenate([p[0] for p in self._pending])
        fresh = {name: k for k, name in enumerate(names.tolist())}
        keep = np.array([n not in fresh for n in self._names.tolist()], dtype=bool)
        dims = {p[2].shape[1] for p in self._pending}
        if self._embeddings is not None:
            dims.add(self._embeddings.shape[1])
        if len(dims) != 1:
            raise ValueError(f"Embedding sizes disagree in the cache: {sorted(dims)}")
        (dim,) = dims
        old_e = self._embeddings[keep] if self._embeddings is not None else np.zeros((0, dim))
        old_f = self._flips[keep] if self._flips is not None else np.zeros((0, dim))
        parts = [(self._names[keep], self._landmarks[keep], old_e, old_f), *self._pending]
        self._names = np.concatenate([p[0] for p in parts]).astype(str)
        self._landmarks = np.concatenate([p[1] for p in parts]).astype(np.float32)
        self._embeddings = np.concatenate([p[2] for p in parts]).astype(np.float32)
        self._flips = np.concatenate([p[3] for p in parts]).astype(np.float32)
        self._index = {name: k for k, name in enumerate(self._names.tolist())}
        self._pending = []
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{os.path.basename(self.path)}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    format=np.array(FORMAT),
                    dataset=np.array(self.dataset),
                    fingerprint=np.array(self.fingerprint),
                    model=np.array(self.model),
                    image_size=np.array(self.image_size),
                    template=np.array("arcface"),
                    names=self._names,
                    landmarks=self._landmarks,
                    embeddings=self._embeddings,
                    flip_embeddings=self._flips,
                )
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
