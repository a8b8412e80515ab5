"""Exact inner-product top-k in TensorFlow, in bounded memory: the reference every index
is checked against.

The probes are cut into batches of at most `probe_batch` rows and the gallery into chunks
of at most `chunk_rows` rows; each (batch, chunk) pair gives one `[probe_batch, chunk_rows]`
similarity block whose top-k is merged into a running top-k. No `[probes, gallery]` matrix
is ever built, so memory is `probe_batch * chunk_rows` floats on top of the gallery itself
(64 MiB at the defaults), whatever the gallery size.

Ties keep the lower gallery row first (`tf.math.top_k` is stable and earlier chunks come
first in the merge), so results are deterministic.
"""

import numpy as np
import tensorflow as tf

from tfface.gallery.row_index import RowIndex

DEFAULT_CHUNK_ROWS = 16384
DEFAULT_PROBE_BATCH = 1024


@tf.function(reduce_retracing=True)
def _score_chunk(probes, rows, k):
    # [probe_batch, chunk_rows] similarities, reduced at once to their top-k.
    sims = tf.matmul(probes, rows, transpose_b=True)
    values, indices = tf.math.top_k(sims, k=k)
    return tf.cast(values, tf.float32), indices


@tf.function(reduce_retracing=True)
def _merge(values, indices, new_values, new_indices, k):
    values = tf.concat([values, new_values], axis=1)
    indices = tf.concat([indices, new_indices], axis=1)
    top, pos = tf.math.top_k(values, k=k)
    return top, tf.gather(indices, pos, batch_dims=1)


def exact_top_k(
    probes,
    gallery,
    k,
    *,
    chunk_rows=DEFAULT_CHUNK_ROWS,
    probe_batch=DEFAULT_PROBE_BATCH,
    progress=None,
):
    """Top-k rows of `gallery` by inner product with each probe.

    Args:
        probes: [m, D] array or tensor; cast to the gallery's dtype.
        gallery: [N, D] tensor (float32 or bfloat16). bfloat16 halves memory and may speed
            up CPUs with bf16 instructions; its similarities carry ~3 significant digits.
        k: results per probe; clipped to N.
        chunk_rows, probe_batch: the largest similarity block is [probe_batch, chunk_rows].
        progress: optional callable(done_probes) called after each probe batch.

    Returns:
        (similarities float32 [m, k'], row indices int64 [m, k']) sorted by descending
        similarity, k' = min(k, N).
    """
    if chunk_rows < 1 or probe_batch < 1:
        raise ValueError(
            f"chunk_rows and probe_batch must be >= 1. Received: chunk_rows={chunk_rows}, "
            f"probe_batch={probe_batch}"
        )
    gallery = tf.convert_to_tensor(gallery)
    n = int(gallery.shape[0])
    probes = tf.cast(tf.convert_to_tensor(probes), gallery.dtype)
    m = int(probes.shape[0])
    k = min(int(k), n)
    if k <= 0 or m == 0:
        return np.zeros((m, 0), np.float32), np.zeros((m, 0), np.int64)
    out_values = np.empty((m, k), np.float32)
    out_indices = np.empty((m, k), np.int64)
    for p0 in range(0, m, probe_batch):
        batch = probes[p0 : p0 + probe_batch]
        values = indices = None
        for c0 in range(0, n, chunk_rows):
            rows = gallery[c0 : c0 + chunk_rows]
            v, i = _score_chunk(batch, rows, min(k, int(rows.shape[0])))
            i = tf.cast(i, tf.int64) + c0
            if values is None:
                values, indices = v, i
            else:
                width = min(k, int(values.shape[1]) + int(v.shape[1]))
                values, indices = _merge(values, indices, v, i, width)
        out_values[p0 : p0 + probe_batch] = values.numpy()
        out_indices[p0 : p0 + probe_batch] = indices.numpy()
        if progress is not None:
            progress(min(p0 + probe_batch, m))
    return out_values, out_indices


class ExactRowIndex(RowIndex):
    """A `RowIndex` searched by `exact_top_k`: exact chunked matrix products, the
    reference. The rows live in one TF constant of `dtype` (float32 or bfloat16)."""

    exact = True

    def __init__(self, dtype="float32", chunk_rows=None, probe_batch=None):
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16'. Received: dtype={dtype!r}")
        self.dtype = dtype
        self.chunk_rows = chunk_rows or DEFAULT_CHUNK_ROWS
        self.probe_batch = probe_batch or DEFAULT_PROBE_BATCH
        self._matrix = None

    def build(self, vectors):
        self._matrix = tf.constant(vectors, dtype=self.dtype)

    def add(self, vectors):
        new = tf.constant(vectors, dtype=self.dtype)
        self._matrix = new if self._matrix is None else tf.concat([self._matrix, new], 0)

    def top_k(self, probes, k):
        return exact_top_k(
            probes,
            self._matrix,
            k,
            chunk_rows=self.chunk_rows,
            probe_batch=self.probe_batch,
        )
