"""`Gallery`: enrol identities' face embeddings once, search them with probes, persistently.

One API over every backend (a `Store`, `tfface.gallery.store`), chosen by the location
string alone (`tfface.gallery.registry`):

    Gallery.open("people.gallery", model_info=...)            # embedded SQLite file (default)
    Gallery.open("people.gallery", index="hnsw")              # the same, searched with FAISS
    Gallery.open("milvus-lite:/data/people.db", model_info=...)  # Milvus embedded (milvus-lite)
    Gallery.open("milvus://db-host:19530/people", model_info=...)  # a Milvus server / cluster

`Gallery` checks every input and the model record; the store keeps rows and searches
them. Contract (the same for every backend):
- An identity's template is *all* of its enrolled embeddings. `search(by="max")` scores an
  identity by its best-matching embedding, `by="mean"` by the mean cosine similarity over
  its embeddings (= dot product with the mean embedding).
- Vectors are L2-normalised on enrolment and on search, so similarities are cosines in
  [-1, 1]. Wrong dimension, NaN/inf or all-zero vectors raise `ValueError` naming the row.
- Enrolment is idempotent: a (name, source) pair or the same (normalised) vector already
  enrolled for that name is skipped; `enroll` returns the number of rows actually added.
- Names are data, never paths: any non-empty string without NUL characters, up to 1,024
  characters ("../x" is a valid name and touches no file).
- The gallery records the model that built it (`model_info`: name, version,
  embedding_size, fingerprint). `open` or `search` with a `model_info` that disagrees on
  any key the caller sets raises `GalleryModelMismatchError` naming both models.
- Embedded backend durability: an `enroll` that returned is committed with fsync (SQLite
  WAL, synchronous=FULL); a process killed mid-`enroll` leaves all earlier enrolments and
  none of the interrupted call; other processes can search while one enrols and see each
  committed enrolment at their next search.
- A `Gallery` object belongs to the thread that opened it (SQLite connections are not
  shared across threads); open one per thread or process, all on the same location.
"""

import hashlib
import json
import os
import typing

import numpy as np

from tfface.gallery import registry
from tfface.gallery.model_info import GalleryError
from tfface.gallery.model_info import GalleryNotFoundError
from tfface.gallery.model_info import check_model_info
from tfface.gallery.model_info import normalize_model_info
from tfface.unit_vectors import ZeroNormError
from tfface.unit_vectors import l2_normalize_rows

_MAX_NAME_LENGTH = 1024
_SEARCH_BY = ("max", "mean")
_EXPORT_VERSION = 1


class Match(typing.NamedTuple):
    """One search result: an enrolled identity and its cosine similarity to the probe."""

    name: str
    similarity: float


def check_name(name, what="name"):
    """Returns `name` if it is a valid identity name, else raises ValueError."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > _MAX_NAME_LENGTH:
        raise ValueError(
            f"Identity {what} must be a non-empty string without NUL characters, at most "
            f"{_MAX_NAME_LENGTH} characters. Received: {what}={name!r}"
        )
    return name


def check_embeddings(embeddings, dim, what="embeddings"):
    """Validates [n, dim] (or one [dim]) embeddings and returns them L2-normalised float32."""
    try:
        x = np.asarray(embeddings, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be a numeric [n, {dim}] array ({e})") from e
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(
            f"{what} must have shape [n, {dim}] (the gallery's embedding size is {dim}). "
            f"Received: {what}.shape={np.shape(embeddings)}"
        )
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise ValueError(
            f"{what} has NaN or inf values in rows {bad[:10].tolist()}"
            f"{' ...' if bad.size > 10 else ''} ({bad.size} of {len(x)} rows)"
        )
    try:
        # Norms in float64; a row is refused when its norm is below 1e-12.
        unit = l2_normalize_rows(x.astype(np.float64), min_norm=np.nextafter(1e-12, 0.0))
    except ZeroNormError as e:
        raise ValueError(
            f"{what} has all-zero rows {e.rows[:10].tolist()}: a zero vector has no direction"
        ) from None
    return unit.astype(np.float32)


def _digest(unit_vector):
    # Hash of the normalised vector on a 2^-20 grid, so that float rounding of the same
    # direction (x and 3x normalise to vectors a few ulps apart) gives the same digest.
    grid = np.round(np.asarray(unit_vector, np.float64) * (1 << 20)).astype("<i4")
    return hashlib.sha1(grid.tobytes()).digest()[:16]


def _per_row(values, n, what):
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{what} must have one entry per embedding ({n}). Received: {len(values)}")
    return values


class Gallery:
    """A persistent set of enrolled identities, searchable by probe embeddings.

    Create or open one with `Gallery.open(location, model_info=...)`; see the module
    docstring for the contract and `tfface.gallery` for the backends.

    Example:
    ```python
    g = Gallery.open("people.gallery", model_info={"name": "mobilefacenet",
                     "version": "1", "embedding_size": 128, "fingerprint": "ab12..."})
    g.enroll("alice", alice_embeddings, sources=["a1.jpg", "a2.jpg"])
    for match in g.search(probe_embeddings, k=5)[0]:
        print(match.name, match.similarity)
    ```
    """

    def __init__(self, store, model_info, index="exact", dtype="float32"):
        self._store = store
        self._model_info = model_info
        self.index = index
        self.dtype = dtype

    @classmethod
    def open(
        cls,
        location,
        model_info=None,
        *,
        create=True,
        index="exact",
        dtype="float32",
        index_options=None,
        **backend_options,
    ):
        """Opens the gallery at `location`, creating it if needed.

        Args:
            location: a local file path (embedded SQLite gallery), `"milvus-lite:PATH"` or
                `"milvus://HOST:PORT/COLLECTION"` (see `tfface.gallery.milvus_store`); the
                prefix picks the store (`tfface.gallery.registry`).
            model_info: the caller's model, `{"name", "version", "embedding_size",
                "fingerprint"}`. Required to create a gallery; when opening an existing one
                it is checked against the recorded model (None skips the check, e.g. for
                listing).
            create: create the gallery when it does not exist (else
                `GalleryNotFoundError`).
            index: embedded backend only: `"exact"` (default, the reference), or an
                approximate FAISS index, `"ivf"` or `"hnsw"`, for galleries past ~1M rows
                (`tfface.gallery.ann_index`; needs `requirements-ann.txt`).
            dtype: embedded exact index only: `"float32"` or `"bfloat16"` (half the
                memory; similarities to ~3 significant digits).
            index_options: keyword arguments for the ANN index (`nlist`, `nprobe`, `M`,
                `ef_search`...).
            **backend_options: passed to the backend (`token=` for Milvus,
                `chunk_rows=`/`probe_batch=` for exact search).
        """
        location = os.fspath(location)
        store = registry.store_class(location).open(
            location,
            create=create,
            index=index,
            dtype=dtype,
            index_options=index_options,
            **backend_options,
        )
        try:
            stored = store.read_model_info()
            if stored is None:
                if not create:
                    raise GalleryNotFoundError(f"No gallery at {location} (create=False)")
                if model_info is None:
                    raise GalleryError(
                        f"Gallery {location} is new (or empty of a model record): pass "
                        "model_info={'name', 'version', 'embedding_size', 'fingerprint'} to "
                        "create it"
                    )
                stored = store.write_model_info(normalize_model_info(model_info))
            check_model_info(stored, model_info, location)
        except BaseException:
            store.close()
            raise
        return cls(store, stored, index=index, dtype=dtype)

    # --- properties -----------------------------------------------------------------
    @property
    def model_info(self):
        """The model that built this gallery (a copy)."""
        return dict(self._model_info)

    @property
    def embedding_size(self):
        return self._model_info["embedding_size"]

    @property
    def location(self):
        return self._store.location

    def __len__(self):
        """Number of enrolled embeddings (rows), over all identities."""
        return self._store.count()

    def __repr__(self):
        return f"Gallery({self.location!r}, model={self._model_info.get('name')!r})"

    def close(self):
        self._store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- writes ---------------------------------------------------------------------
    def enroll(self, name, embeddings, sources=None, metadata=None):
        """Adds embeddings of one identity; returns how many rows were new.

        Args:
            name: the identity (any non-empty string; data, never a path).
            embeddings: [n, D] (or [D]) float array; L2-normalised here.
            sources: optional per-row strings (e.g. image paths); a (name, source) pair
                already enrolled is skipped.
            metadata: optional per-row JSON-serialisable dicts, kept and exported.
        """
        check_name(name)
        vectors = check_embeddings(embeddings, self.embedding_size)
        n = len(vectors)
        sources = _per_row(sources, n, "sources")
        for s in sources:
            if s is not None and not isinstance(s, str):
                raise ValueError(f"sources must be strings or None. Received: {s!r}")
        metadata = _per_row(metadata, n, "metadata")
        for m in metadata:
            if m is not None:
                if not isinstance(m, dict):
                    raise ValueError(f"metadata entries must be dicts or None. Received: {m!r}")
                try:
                    json.dumps(m)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"metadata must be JSON-serialisable: {m!r} ({e})") from e
        if n == 0:
            return 0
        digests = [_digest(v) for v in vectors]
        return self._store.add(name, vectors, digests, sources, metadata)

    def remove(self, name):
        """Removes an identity and all its embeddings; returns how many rows went."""
        return self._store.remove(check_name(name))

    def rename(self, old, new):
        """Renames an identity; raises GalleryError if `old` is missing or `new` exists."""
        self._store.rename(check_name(old, "old"), check_name(new, "new"))

    # --- settings -------------------------------------------------------------------
    def settings(self):
        """The gallery's settings (a dict; {} when none were written), e.g.
        `"identify_threshold"`, which `tfface calibrate` writes and `tfface identify` reads."""
        return self._store.read_settings()

    def update_settings(self, **changes):
        """Merges `changes` into the settings and returns them; `key=None` deletes a key.
        Keys are strings, values anything JSON can hold."""
        try:
            json.dumps(changes, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"settings must be JSON-serialisable: {changes!r} ({e})") from e
        return self._store.update_settings(changes)

    # --- reads ----------------------------------------------------------------------
    def identities(self):
        """[(name, number of embeddings)] sorted by name."""
        return self._store.identities()

    def __contains__(self, name):
        return any(n == name for n, _ in self.identities())

    def stats(self):
        """A JSON-ready summary: location, backend, counts, model, index, size on disk and
        settings (e.g. the calibrated open-set threshold)."""
        ids = self.identities()
        return {
            "location": self.location,
            "backend": type(self._store).__name__,
            "identities": len(ids),
            "embeddings": sum(c for _, c in ids),
            "embedding_size": self.embedding_size,
            "model_info": self.model_info,
            "index": self.index,
            "dtype": self.dtype,
            "bytes_on_disk": self._store.file_size(),
            "settings": self.settings(),
        }

    def search(self, probes, k=5, by="max", model_info=None):
        """Top-k identities for each probe.

        Args:
            probes: [m, D] (or one [D]) float array; L2-normalised here.
            k: identities per probe (fewer when the gallery has fewer).
            by: `"max"` (best embedding of each identity) or `"mean"` (mean similarity).
            model_info: the probes' model; checked against the gallery's when given.

        Returns:
            A list with one list of `Match(name, similarity)` per probe, best first.
        """
        if by not in _SEARCH_BY:
            raise ValueError(f"by must be one of {_SEARCH_BY}. Received: by={by!r}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer. Received: k={k!r}")
        check_model_info(self._model_info, model_info, self.location)
        vectors = check_embeddings(probes, self.embedding_size, "probes")
        results = self._store.search(vectors, int(k), by)
        return [[Match(n, s) for n, s in hits] for hits in results]

    def rows(self):
        """Iterates over every enrolled row as (name, source, unit vector float32 [D],
        metadata dict or None), in enrolment order."""
        return self._store.rows()

    def to_arrays(self):
        """(names: list of N str, embeddings: float32 [N, D]) of every row, e.g. to bake a
        small gallery into a SavedModel."""
        names, vecs = [], []
        for name, _, vec, _ in self._store.rows():
            names.append(name)
            vecs.append(vec)
        embeddings = np.stack(vecs) if vecs else np.zeros((0, self.embedding_size), np.float32)
        return names, embeddings

    # --- portable copies ------------------------------------------------------------
    def export(self, path):
        """Writes every row to a portable `.npz` (float32 `embeddings` plus a JSON
        `manifest` with model_info, names, sources and metadata); returns the row count.
        Loads with `np.load(path, allow_pickle=False)`."""
        names, sources, metas, vecs = [], [], [], []
        for name, src, vec, meta in self._store.rows():
            names.append(name)
            sources.append(src)
            metas.append(meta)
            vecs.append(vec)
        embeddings = np.stack(vecs) if vecs else np.zeros((0, self.embedding_size), np.float32)
        manifest = {
            "format": "tfface.gallery",
            "version": _EXPORT_VERSION,
            "model_info": self.model_info,
            "names": names,
            "sources": sources,
            "metadata": metas,
        }
        with open(os.fspath(path), "wb") as f:
            np.savez(
                f,
                embeddings=embeddings,
                manifest=np.frombuffer(json.dumps(manifest).encode(), np.uint8),
            )
        return len(names)

    @classmethod
    def import_(cls, path, location, model_info=None, **open_options):
        """Opens (or creates) the gallery at `location` and enrols every row of an export.

        The export's model_info creates the gallery; `model_info`, when given, must agree
        with it, and an existing gallery must agree too. Rows already there are skipped.
        Returns the opened `Gallery`.
        """
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                embeddings = data["embeddings"]
                manifest = json.loads(data["manifest"].tobytes().decode())
        except (OSError, KeyError, ValueError) as e:
            raise GalleryError(f"{path} is not a tfface gallery export ({e})") from e
        if manifest.get("format") != "tfface.gallery":
            raise GalleryError(f"{path} is not a tfface gallery export (no format tag)")
        exported = manifest["model_info"]
        check_model_info(exported, model_info, path)
        gallery = cls.open(location, model_info=exported, **open_options)
        names = manifest["names"]
        order = {}
        for i, name in enumerate(names):
            order.setdefault(name, []).append(i)
        for name, rows in order.items():
            gallery.enroll(
                name,
                embeddings[rows],
                sources=[manifest["sources"][i] for i in rows],
                metadata=[manifest["metadata"][i] for i in rows],
            )
        return gallery
