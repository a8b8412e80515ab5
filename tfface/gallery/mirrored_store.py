"""`MirroredStore`: a `Store` that keeps rows and searches an in-memory mirror of them.

A backend without its own vector search (the SQLite file) provides a row feed, and this
base class gives it `search`: `vector_cache.VectorCache` mirrors the rows into a
`RowIndex` at the first search and keeps the mirror current (see its docstring). The index
is chosen when the store is opened:

- `index="exact"` (default): `exact_search.ExactRowIndex`, exact chunked matrix products
  in TensorFlow, the reference; `dtype="bfloat16"` halves its memory (similarities to ~3
  significant digits); `chunk_rows` / `probe_batch` bound its blocks.
- `index="ivf"` / `"hnsw"`: `ann_index.FaissRowIndex`, approximate, for galleries past
  ~1M rows; `index_options` go to it (`nprobe`, `M`, `ef_search`...).

TensorFlow (or FAISS) is imported at the first search, not when the store opens, so
listing or editing a gallery needs neither.

The row feed a subclass implements, read by the mirror:
- `generations()`: (generation, reset_generation): the first grows at every committed
  write, the second at every write that removes or renames (the mirror then reloads
  rather than appends).
- `names(after_id)`: (identity id, name) pairs with id > after_id, in id order.
- `vectors(dim, after_id)`: batches of (row ids int64, identity ids int64, float32
  vectors) for rows with id > after_id, in id order; ids only grow.
- `snapshot()`: a context in which every read sees one committed state.
"""

import abc

from tfface.gallery.store import Store

INDEXES = ("exact", "ivf", "hnsw")
DTYPES = ("float32", "bfloat16")
SEARCH_OPTIONS = ("index", "dtype", "index_options", "chunk_rows", "probe_batch")


class MirroredStore(Store):
    """A store searched through an in-memory mirror; see the module docstring.

    Args:
        index: `"exact"`, `"ivf"` or `"hnsw"`.
        dtype: the exact index's dtype, `"float32"` or `"bfloat16"`.
        index_options: keyword arguments for the FAISS index.
        chunk_rows, probe_batch: the exact index's block sizes (None: the defaults).
    """

    def __init__(
        self, index="exact", dtype="float32", index_options=None, chunk_rows=None, probe_batch=None
    ):
        if index not in INDEXES:
            raise ValueError(f"index must be one of {INDEXES}. Received: index={index!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}. Received: dtype={dtype!r}")
        self.index = index
        self.dtype = dtype
        self.index_options = dict(index_options or {})
        self.chunk_rows = chunk_rows
        self.probe_batch = probe_batch
        self._mirror = None

    @staticmethod
    def check_options(options, what):
        """Raises ValueError naming any option in `options` a mirrored store does not take."""
        unknown = sorted(set(options) - set(SEARCH_OPTIONS))
        if unknown:
            raise ValueError(f"Unknown options for {what}: {unknown}")

    def make_row_index(self, dim):
        """A new, empty `RowIndex` of the kind this store was opened with."""
        if self.index == "exact":
            from tfface.gallery.exact_search import ExactRowIndex

            return ExactRowIndex(self.dtype, self.chunk_rows, self.probe_batch)
        from tfface.gallery.ann_index import FaissRowIndex

        return FaissRowIndex(self.index, dim, **self.index_options)

    def search(self, probes, k, by):
        if self._mirror is None:
            from tfface.gallery.vector_cache import VectorCache

            dim = self.read_model_info()["embedding_size"]
            self._mirror = VectorCache(self, dim, lambda: self.make_row_index(dim))
        return self._mirror.search(probes, k, by)

    # --- the row feed -----------------------------------------------------------------
    @abc.abstractmethod
    def generations(self):
        """(generation, reset_generation) of the committed state."""

    @abc.abstractmethod
    def names(self, after_id=0):
        """(identity id, name) pairs with id > after_id, in id order."""

    @abc.abstractmethod
    def vectors(self, dim, after_id=0):
        """Yields (row ids, identity ids, float32 [b, dim]) for rows with id > after_id."""

    @abc.abstractmethod
    def snapshot(self):
        """A context manager: every read inside sees one committed state."""
