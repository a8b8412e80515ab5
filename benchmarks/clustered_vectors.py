"""Clustered unit vectors shaped like face embeddings, recall against exact rows, timing.

NumPy only, so the ANN benchmarks can run on a machine without TensorFlow. Uniform random
vectors would make every ANN index look broken (no neighbour is much nearer than another);
identities with a centre and rows around it are what a face gallery holds.
"""

import time

import numpy as np


def clustered(rows, dim, per_identity, probes, seed=0, spread=0.75):
    """(gallery [rows, dim], row identity [rows], probes [probes, dim], probe identity)."""
    rng = np.random.default_rng(seed)
    identities = rows // per_identity
    centers = rng.standard_normal((identities, dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    owner = np.repeat(np.arange(identities), per_identity)
    gallery = np.empty((len(owner), dim), np.float32)
    block = 65536
    for i in range(0, len(owner), block):
        o = owner[i : i + block]
        x = centers[o] + spread * rng.standard_normal((len(o), dim), dtype=np.float32) / np.sqrt(
            dim
        )
        gallery[i : i + block] = x / np.linalg.norm(x, axis=1, keepdims=True)
    probe_owner = rng.integers(0, identities, probes)
    p = centers[probe_owner] + spread * rng.standard_normal((probes, dim), dtype=np.float32) / (
        np.sqrt(dim)
    )
    return gallery, owner, p / np.linalg.norm(p, axis=1, keepdims=True), probe_owner


def recall(rows, reference):
    """Mean fraction of each probe's reference rows that `rows` found (recall@k)."""
    return float(
        np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(rows, reference, strict=True)])
    )


def timed(fn, repeats=1):
    """(best wall seconds over `repeats` calls of `fn`, the last call's result)."""
    best, out = None, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best, out
