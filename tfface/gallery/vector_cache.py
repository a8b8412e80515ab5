"""The in-memory copy of a mirrored store's rows that its searches run on
(`mirrored_store.MirroredStore`; the SQLite file is one).

It mirrors the store: new rows committed by any process are appended at the next
search (one small query when nothing changed), and a remove or rename anywhere rebuilds
it. Identity search on top of a row index:
- `by="max"`: an identity's score is its best-matching embedding. The top `k * c` rows
  (c = the largest number of embeddings of one identity) always contain the best row of
  each of the top-k identities, so de-duplicating them in order is exact.
- `by="mean"`: an identity's score is the mean cosine similarity to its embeddings, which
  equals the probe's dot product with the mean of its (unit) embeddings: one row per
  identity, searched the same way.
"""

import numpy as np

from tfface.gallery.exact_search import ExactRowIndex


class VectorCache:
    """Mirror of `store` (a `MirroredStore`) with identity search; `index_factory()` makes
    an empty `RowIndex`."""

    def __init__(self, store, dim, index_factory):
        self.store = store
        self.dim = dim
        self.index_factory = index_factory
        self._generation = None
        self._index = None
        self._mean_index = None

    def refresh(self):
        generation, reset = self.store.generations()
        if self._generation is not None and generation == self._generation:
            return
        if self._generation is None or reset > self._generation:
            self._load(after_row=0)
        else:
            self._load(after_row=self._last_row)
        self._generation = generation

    def _load(self, after_row):
        full = after_row == 0
        if full:
            self._names = {}
            self._last_row = 0
            self._last_identity = 0
            self._owners = np.zeros((0,), np.int64)
            self._index = self.index_factory()
            self._vectors_seen = 0
        for identity, name in self.store.names(self._last_identity):
            self._names[identity] = name
            self._last_identity = identity
        owners, blocks = [], []
        for ids, own, vecs in self.store.vectors(self.dim, after_id=after_row):
            owners.append(own)
            blocks.append(vecs)
            self._last_row = int(ids[-1])
        if blocks:
            vecs = np.concatenate(blocks)
            if full:
                self._index.build(vecs)
            else:
                self._index.add(vecs)
            self._owners = np.concatenate([self._owners, *owners])
        self._mean_index = None
        self._refresh_identity_table()

    def _refresh_identity_table(self):
        # Dense identity numbers 0..I-1 for the owners of rows, and the largest count.
        self._identity_ids, self._dense_owner, counts = np.unique(
            self._owners, return_inverse=True, return_counts=True
        )
        self._max_count = int(counts.max()) if counts.size else 0

    def __len__(self):
        return int(self._owners.shape[0])

    def _mean_vectors(self):
        # Mean of each identity's unit embeddings, from the store, in the same read
        # snapshot as the last refresh (see `search`), so the rows are the loaded ones.
        sums = np.zeros((len(self._identity_ids), self.dim), np.float64)
        for _, own, vecs in self.store.vectors(self.dim):
            np.add.at(sums, np.searchsorted(self._identity_ids, own), vecs)
        counts = np.bincount(self._dense_owner, minlength=len(self._identity_ids))
        return (sums / counts[:, None]).astype(np.float32)

    def search(self, probes, k, by):
        """Per probe, a list of (name, similarity) for the top-k identities."""
        # One read snapshot for the counters, names, rows and means: a write committed by
        # another process in between can never leave a row without its name.
        with self.store.snapshot():
            self.refresh()
            if by == "mean" and self._mean_index is None and len(self):
                self._mean_index = ExactRowIndex()
                self._mean_index.build(self._mean_vectors())
        if len(self) == 0:
            return [[] for _ in range(len(probes))]
        if by == "max":
            sims, rows = self._index.top_k(probes, k * self._max_count)
            owners = np.where(rows >= 0, self._dense_owner[np.maximum(rows, 0)], -1)
        else:
            sims, owners = self._mean_index.top_k(probes, k)
        results = []
        for p_sims, p_owners in zip(sims, owners, strict=True):
            seen, hits = set(), []
            for s, o in zip(p_sims, p_owners, strict=True):
                if o < 0 or o in seen:
                    continue  # an ANN index pads missing results with -1
                seen.add(o)
                hits.append((self._names[int(self._identity_ids[o])], float(s)))
                if len(hits) == k:
                    break
            results.append(hits)
        return results
