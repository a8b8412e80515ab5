"""Tests for tfface.gallery.exact_search: exact top-k in bounded blocks."""

import numpy as np
import pytest
import tensorflow as tf

from tfface.gallery import exact_search


def _loop_top_k(probes, gallery, k):
    """Reference with explicit loops: score every row, sort by (-score, row)."""
    out_v, out_i = [], []
    for p in probes:
        scored = [(float(np.dot(p, g)), j) for j, g in enumerate(gallery)]
        scored.sort(key=lambda t: (-t[0], t[1]))
        out_v.append([s for s, _ in scored[:k]])
        out_i.append([j for _, j in scored[:k]])
    return np.array(out_v), np.array(out_i)


@pytest.mark.parametrize(
    "n, m, k, chunk_rows, probe_batch",
    [(103, 17, 5, 10, 4), (50, 3, 7, 50, 16), (9, 5, 20, 4, 2), (64, 8, 1, 7, 3)],
)
def test_matches_loop_reference_and_blocks_stay_bounded(
    monkeypatch, n, m, k, chunk_rows, probe_batch
):
    rng = np.random.default_rng(n)
    gallery = rng.normal(size=(n, 12)).astype(np.float32)
    probes = rng.normal(size=(m, 12)).astype(np.float32)
    blocks = []
    score = exact_search._score_chunk

    def recording(p, rows, kk):
        blocks.append((int(p.shape[0]), int(rows.shape[0])))
        return score(p, rows, kk)

    monkeypatch.setattr(exact_search, "_score_chunk", recording)
    values, indices = exact_search.exact_top_k(
        probes, gallery, k, chunk_rows=chunk_rows, probe_batch=probe_batch
    )
    want_v, want_i = _loop_top_k(probes, gallery, min(k, n))
    np.testing.assert_allclose(values, want_v, atol=1e-5)
    np.testing.assert_array_equal(indices, want_i)
    # Every similarity block that was built: at most [probe_batch, chunk_rows], and
    # together they cover the [m, n] product exactly once.
    assert max(b[0] for b in blocks) <= probe_batch
    assert max(b[1] for b in blocks) <= chunk_rows
    assert sum(b[0] * b[1] for b in blocks) == m * n


def test_the_only_matmul_is_one_block():
    """Graph inspection: the chunk function holds one MatMul, of its two block arguments,
    so the largest similarity matrix is the [probe_batch, chunk_rows] block bounded above."""
    rng = np.random.default_rng(0)
    p = tf.constant(rng.normal(size=(3, 8)).astype(np.float32))
    rows = tf.constant(rng.normal(size=(10, 8)).astype(np.float32))
    graph = exact_search._score_chunk.get_concrete_function(p, rows, 4).graph
    matmuls = [op for op in graph.get_operations() if "MatMul" in op.type]
    assert len(matmuls) == 1
    assert [t.op.type for t in matmuls[0].inputs] == ["Placeholder", "Placeholder"]


def test_ties_keep_the_lower_row_and_bfloat16_runs():
    gallery = np.tile(np.eye(4, dtype=np.float32), (3, 1))  # rows j, j+4, j+8 are equal
    v, i = exact_search.exact_top_k(np.eye(4)[:1], gallery, 3, chunk_rows=5)
    np.testing.assert_array_equal(i, [[0, 4, 8]])
    v16, i16 = exact_search.exact_top_k(
        np.eye(4)[:1], tf.constant(gallery, tf.bfloat16), 3, chunk_rows=5
    )
    np.testing.assert_array_equal(i16, [[0, 4, 8]])
    assert v16.dtype == np.float32


def test_bad_sizes():
    with pytest.raises(ValueError, match="chunk_rows"):
        exact_search.exact_top_k(np.ones((1, 2)), np.ones((3, 2), np.float32), 1, chunk_rows=0)
    v, i = exact_search.exact_top_k(np.ones((0, 2)), np.ones((3, 2), np.float32), 2)
    assert v.shape == (0, 0)
