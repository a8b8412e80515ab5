"""Approximate row search with FAISS, for embedded galleries past about 1M rows.

`Gallery.open(path, index="ivf")` or `index="hnsw"` swaps the exact TF search for a FAISS
index built in memory when the gallery is loaded; the SQLite file stays the source of
truth and `index="exact"` on the same file is the reference to check recall against.
FAISS is an index over a store's rows, not a store (see `tfface.gallery.store`): any
`MirroredStore` searches through it.
Needs `pip install -r requirements-ann.txt` (faiss-cpu).

- `"ivf"` (IndexIVFFlat, inner product): k-means into `nlist` lists (default
  4·sqrt(N), at most N/39 so k-means has its 39 points per centroid), trained with
  `niter` iterations on up to `train_size` rows at load (k-means dominates the load time:
  it costs niter × train_size × nlist × D multiply-adds); a search scans the `nprobe`
  nearest lists. Rows enrolled later go to the existing lists; reopening retrains.
  Recall depends on the data: tune `nprobe` with `benchmarks/gallery_search.py`
  (BENCHMARKS.md has the measured trade-off).
- `"hnsw"` (IndexHNSWFlat): graph with `M` links per node, `ef_construction` at build,
  `ef_search` at query time. No training, but building is slow (minutes per million).

Both return -1 for missing neighbours, which the identity search skips.
"""

import math

import numpy as np

from tfface.gallery.row_index import RowIndex


def _faiss():
    try:
        import faiss
    except ImportError as e:
        raise ImportError(
            "index='ivf' / 'hnsw' needs FAISS: pip install -r requirements-ann.txt"
        ) from e
    return faiss


class FaissRowIndex(RowIndex):
    """A FAISS inner-product `RowIndex`, approximate.

    Args:
        kind: `"ivf"` or `"hnsw"`.
        dim: vector size.
        nlist, nprobe, train_size, niter: IVF options (see module docstring); k-means runs
            `niter` iterations on `train_size` sampled rows.
        M, ef_construction, ef_search: HNSW options.
        seed: k-means seed, for reproducible lists.
    """

    exact = False

    def __init__(
        self,
        kind,
        dim,
        nlist=None,
        nprobe=32,
        train_size=65_536,
        niter=10,
        M=32,
        ef_construction=200,
        ef_search=128,
        seed=1234,
    ):
        if kind not in ("ivf", "hnsw"):
            raise ValueError(f"kind must be 'ivf' or 'hnsw'. Received: kind={kind!r}")
        self.faiss = _faiss()
        self.kind = kind
        self.dim = int(dim)
        self.nlist = nlist
        self.nprobe = int(nprobe)
        self.train_size = int(train_size)
        self.niter = int(niter)
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.seed = seed
        self._index = None

    def _make(self, vectors):
        faiss = self.faiss
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self.M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            return index
        n = len(vectors)
        nlist = self.nlist or int(4 * math.sqrt(max(n, 1)))
        nlist = max(1, min(nlist, n // 39))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(self.seed)
        sample = vectors
        if n > self.train_size:
            sample = vectors[np.sort(rng.choice(n, self.train_size, replace=False))]
        index.cp.seed = self.seed
        index.cp.niter = self.niter
        index.train(np.ascontiguousarray(sample, np.float32))
        index.nprobe = min(self.nprobe, nlist)
        return index

    def build(self, vectors):
        vectors = np.ascontiguousarray(vectors, np.float32)
        self._index = None
        if len(vectors):
            self._index = self._make(vectors)
            self._index.add(vectors)

    def add(self, vectors):
        if self._index is None:
            self.build(vectors)
        else:
            self._index.add(np.ascontiguousarray(vectors, np.float32))

    @property
    def ntotal(self):
        return 0 if self._index is None else int(self._index.ntotal)

    def top_k(self, probes, k):
        probes = np.ascontiguousarray(probes, np.float32)
        k = min(int(k), self.ntotal)
        if k == 0:
            return np.zeros((len(probes), 0), np.float32), np.zeros((len(probes), 0), np.int64)
        sims, rows = self._index.search(probes, k)
        return sims.astype(np.float32), rows.astype(np.int64)
