"""`RowIndex`: the in-memory row search a `MirroredStore` runs identity searches on.

A row index holds unit vectors in the order they were given (row i is the i-th vector
given to `build`, then to `add`) and finds the rows with the largest inner products.
Implementations: `exact_search.ExactRowIndex` (TensorFlow, exact: the reference) and
`ann_index.FaissRowIndex` (FAISS IVF / HNSW, approximate). An index knows nothing of
names or of the disk; `vector_cache.VectorCache` maps its rows to identities.
"""

import abc


class RowIndex(abc.ABC):
    """Top-k rows by inner product over vectors given by `build` and `add`."""

    exact = True  # False: `top_k` may miss rows (recall below 1)

    @abc.abstractmethod
    def build(self, vectors):
        """Replaces the contents with float32 [N, D] `vectors` (rows 0..N-1)."""

    @abc.abstractmethod
    def add(self, vectors):
        """Appends float32 [n, D] `vectors` as the next rows."""

    @abc.abstractmethod
    def top_k(self, probes, k):
        """(similarities float32 [m, k'], rows int64 [m, k']) best first, k' <= k; an
        approximate index may pad missing results with row -1."""
