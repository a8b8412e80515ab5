"""Clustering face embeddings by person, and scoring a clustering against known identities.

NumPy only (scikit-learn for `method="dbscan"`, imported only then); no TensorFlow.

- `chinese_whispers(embeddings, threshold)`: dlib's Chinese whispers (Biemann 2006) as
  `dlib.chinese_whispers_clustering` runs it: an edge joins two faces whose cosine
  similarity reaches the threshold (every face also has an edge to itself, all edges weigh
  1); then, `iterations × N` times, a node drawn at random takes the label most common
  among its neighbours (ties: the smallest label, as dlib's `std::map` scan gives). Seeded.
- `cluster_embeddings(...)`: either method, then clusters smaller than `min_size` become
  unclustered (-1) and the rest are numbered by size, largest first.
- `clustering_scores(true, predicted)`: purity, inverse purity ("recall": how much of each
  person lands in one cluster) and pairwise precision / recall / F1. An unclustered face
  (-1) counts as a cluster of its own.

    labels = cluster_embeddings(embeddings, threshold=0.92, min_size=2, seed=0)
    clustering_scores(identities, labels)  # {"purity": 1.0, "recall": 0.97, ...}
"""

import numpy as np

from tfface.unit_vectors import l2_normalize_rows

METHODS = ("chinese_whispers", "dbscan")
UNCLUSTERED = -1
# Rows of the similarity matrix computed at once: bounds memory at ~CHUNK × N floats.
_CHUNK = 1024


def _unit(embeddings):
    x = np.asarray(embeddings, np.float32)
    if x.ndim != 2:
        raise ValueError(f"`embeddings` must be [N, D]. Received: shape={x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("`embeddings` must be finite. Received: NaN or inf values")
    return l2_normalize_rows(x)


def _check_threshold(threshold):
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(
            f"`threshold` must be a cosine in [-1, 1]. Received: threshold={threshold}"
        )
    return float(threshold)


def neighbours(embeddings, threshold):
    """[int64 array per face]: the faces whose cosine similarity to it is >= `threshold`
    (itself included), in index order. Built in row chunks, never the whole N × N matrix."""
    x = _unit(embeddings)
    threshold = _check_threshold(threshold)
    out = []
    for start in range(0, len(x), _CHUNK):
        similar = x[start : start + _CHUNK] @ x.T >= threshold
        similar[np.arange(len(similar)), np.arange(start, start + len(similar))] = True
        out.extend(np.flatnonzero(row) for row in similar)
    return out


def chinese_whispers(embeddings, threshold, iterations=100, seed=0):
    """Labels int64 [N] (0..K-1, by first appearance) of dlib's Chinese whispers.

    Args:
        embeddings: [N, D] face embeddings (normalised here).
        threshold: cosine similarity at which two faces are joined (the model's verify
            threshold: `dlib.chinese_whispers_clustering(descriptors, 0.6)` joins faces
            closer than 0.6 in Euclidean distance).
        iterations: passes; each updates N randomly drawn nodes (dlib's default 100).
        seed: the random node order; the same seed gives the same labels.
    """
    if int(iterations) < 1:
        raise ValueError(f"`iterations` must be >= 1. Received: iterations={iterations}")
    # Python lists and a dict per step: ~10× faster than NumPy calls on ~10-100 neighbours.
    adjacency = [row.tolist() for row in neighbours(embeddings, threshold)]
    n = len(adjacency)
    labels = list(range(n))
    order = np.random.default_rng(seed).integers(0, max(n, 1), size=int(iterations) * n)
    for node in order.tolist():
        near = adjacency[node]
        if len(near) == 1:  # only itself: keeps its own label
            continue
        counts = {}
        for other in near:
            label = labels[other]
            counts[label] = counts.get(label, 0) + 1
        # The most common label; ties to the smallest, as dlib's ordered scan with `>`.
        labels[node] = min(counts, key=lambda label: (-counts[label], label))
    return _first_appearance(np.asarray(labels))


def _first_appearance(labels):
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].astype(np.int64)


def dbscan(embeddings, threshold, min_samples=2):
    """Labels int64 [N] of scikit-learn's DBSCAN on cosine distance with eps = 1 −
    `threshold` (a face is joined to those at similarity >= threshold); noise is -1.

    Raises:
        ImportError: scikit-learn is not installed (`pip install 'tfface[cluster]'`).
    """
    from sklearn.cluster import DBSCAN

    x = _unit(embeddings)
    eps = max(1.0 - _check_threshold(threshold), 1e-12)  # DBSCAN refuses eps = 0
    return DBSCAN(eps=eps, min_samples=int(min_samples), metric="cosine").fit_predict(x)


def cluster_embeddings(
    embeddings, threshold, method="chinese_whispers", min_size=2, seed=0, iterations=100
):
    """Labels int64 [N]: clusters of at least `min_size` faces numbered 0.. by size (largest
    first, ties by first face), the rest `UNCLUSTERED` (-1).

    Args:
        embeddings: [N, D] face embeddings.
        threshold: cosine similarity at which two faces count as the same person.
        method: "chinese_whispers" (NumPy, seeded) or "dbscan" (scikit-learn, with
            min_samples = `min_size`).
        min_size: smallest group reported as a person (1 keeps singletons as people).
        seed, iterations: Chinese whispers' random order and passes.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    if int(min_size) < 1:
        raise ValueError(f"`min_size` must be >= 1. Received: min_size={min_size}")
    if len(embeddings) == 0:
        return np.zeros((0,), np.int64)
    if method == "chinese_whispers":
        raw = chinese_whispers(embeddings, threshold, iterations=iterations, seed=seed)
    else:
        raw = dbscan(embeddings, threshold, min_samples=min_size)
    labels = np.full(len(raw), UNCLUSTERED, np.int64)
    groups = [np.flatnonzero(raw == c) for c in np.unique(raw[raw >= 0])]
    groups = [g for g in groups if len(g) >= int(min_size)]
    groups.sort(key=lambda g: (-len(g), g[0]))
    for number, members in enumerate(groups):
        labels[members] = number
    return labels


def _singletons_apart(labels):
    # Each unclustered face becomes a cluster of its own (labels past the largest).
    labels = np.asarray(labels, np.int64).copy()
    alone = labels < 0
    labels[alone] = labels.max(initial=-1) + 1 + np.arange(alone.sum())
    return labels


def clustering_scores(true_labels, predicted_labels):
    """Scores of a clustering against known identities.

    Returns:
        {"purity": share of faces in the majority identity of their cluster,
         "recall": share of faces in the cluster holding most of their identity (inverse
             purity),
         "pairwise_precision", "pairwise_recall", "pairwise_f1": over pairs of faces (same
             cluster vs same identity; 1.0 where there is no pair to get wrong),
         "clusters": distinct labels >= 0, "unclustered": faces labelled -1,
         "identities": distinct true identities, "faces": N}.
    """
    true = np.asarray(true_labels)
    predicted = np.asarray(predicted_labels, np.int64)
    if true.shape != predicted.shape or true.ndim != 1:
        raise ValueError(
            "`true_labels` and `predicted_labels` must be 1-D of one length. Received: "
            f"shapes {true.shape} and {predicted.shape}"
        )
    n = len(true)
    _, true_ids = np.unique(true, return_inverse=True)
    clusters = _singletons_apart(predicted)
    _, cluster_ids = np.unique(clusters, return_inverse=True)
    table = np.zeros((cluster_ids.max(initial=-1) + 1, true_ids.max(initial=-1) + 1), np.int64)
    np.add.at(table, (cluster_ids, true_ids), 1)
    pairs = lambda counts: float(np.sum(counts * (counts - 1) // 2))
    together, same_cluster, same_person = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    precision = together / same_cluster if same_cluster else 1.0
    recall = together / same_person if same_person else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "purity": float(table.max(axis=1).sum() / n) if n else 1.0,
        "recall": float(table.max(axis=0).sum() / n) if n else 1.0,
        "pairwise_precision": precision,
        "pairwise_recall": recall,
        "pairwise_f1": f1,
        "clusters": int(len(np.unique(predicted[predicted >= 0]))),
        "unclustered": int(np.sum(predicted < 0)),
        "identities": int(table.shape[1]),
        "faces": int(n),
    }
