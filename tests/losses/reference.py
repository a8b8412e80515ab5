"""Slow NumPy references for the triplet losses: explicit loops, float64, no vectorisation.

They restate the definitions (and tfa's fallbacks) one anchor, positive and negative at a
time, so they share no code or trick with the O(B²) implementations under test.
"""

import math

import numpy as np


def distance_matrix(embeddings, metric):
    x = np.asarray(embeddings, dtype=np.float64)
    n = x.shape[0]
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if metric in ("L2", "squared-L2"):
                sq = sum((x[i, k] - x[j, k]) ** 2 for k in range(x.shape[1]))
                d[i, j] = sq if metric == "squared-L2" else math.sqrt(sq)
            elif metric == "angular":
                ni = math.sqrt(max(sum(v * v for v in x[i]), 1e-12))
                nj = math.sqrt(max(sum(v * v for v in x[j]), 1e-12))
                cos = sum(x[i, k] * x[j, k] for k in range(x.shape[1])) / (ni * nj)
                d[i, j] = max(1.0 - cos, 0.0)
            else:
                raise ValueError(metric)
    return d


def _softplus(v):
    return math.log1p(math.exp(-abs(v))) + max(v, 0.0)


def semihard_loss(labels, embeddings, margin=1.0, metric="L2"):
    d = distance_matrix(embeddings, metric)
    n = len(labels)
    total, pairs = 0.0, 0
    for a in range(n):
        negatives = [d[a, k] for k in range(n) if labels[k] != labels[a]]
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [v for v in negatives if v > d[a, p]]
            if farther:
                neg = min(farther)
            elif negatives:
                neg = max(negatives)
            else:
                neg = min(d[a, k] for k in range(n))  # tfa's empty-mask fallback
            total += max(margin + d[a, p] - neg, 0.0)
            pairs += 1
    return total / pairs if pairs else 0.0


def _hard_terms(labels, embeddings, margin, soft, metric):
    """Per-anchor (has_positive, loss) with tfa's fallbacks for empty masks."""
    d = distance_matrix(embeddings, metric)
    n = len(labels)
    terms = []
    for a in range(n):
        positives = [d[a, k] for k in range(n) if k != a and labels[k] == labels[a]]
        negatives = [d[a, k] for k in range(n) if labels[k] != labels[a]]
        hardest_pos = max(positives) if positives else min(d[a, k] for k in range(n))
        hardest_neg = min(negatives) if negatives else max(d[a, k] for k in range(n))
        gap = hardest_pos - hardest_neg
        terms.append((bool(positives), _softplus(gap) if soft else max(gap + margin, 0.0)))
    return terms


def hard_loss(labels, embeddings, margin=1.0, soft=False, metric="L2"):
    """tfface semantics: mean over anchors that have a positive (0 if none)."""
    valid = [t for has_pos, t in _hard_terms(labels, embeddings, margin, soft, metric) if has_pos]
    return sum(valid) / len(valid) if valid else 0.0


def hard_loss_tfa_semantics(labels, embeddings, margin=1.0, soft=False, metric="L2"):
    """tfa semantics: mean over every anchor, positive-less ones included."""
    terms = _hard_terms(labels, embeddings, margin, soft, metric)
    return sum(t for _, t in terms) / len(terms)


def batch_all_loss(labels, embeddings, margin=1.0, soft=False, metric="L2"):
    d = distance_matrix(embeddings, metric)
    n = len(labels)
    total, count = 0.0, 0
    for a in range(n):
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            for k in range(n):
                if labels[k] == labels[a]:
                    continue
                if soft:
                    total += _softplus(d[a, p] - d[a, k])
                    count += 1
                else:
                    value = margin + d[a, p] - d[a, k]
                    if value > 0:
                        total += value
                        count += 1
    return total / count if count else 0.0


def numerical_gradient(fn, embeddings, eps=1e-6):
    """Central finite differences of the scalar fn(embeddings) in float64."""
    x = np.asarray(embeddings, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            up, down = x.copy(), x.copy()
            up[i, j] += eps
            down[i, j] -= eps
            grad[i, j] = (fn(up) - fn(down)) / (2 * eps)
    return grad


def random_batch(seed, batch, dim, kind="mixed"):
    """(labels int32 [B], embeddings float32 [B, D]) for a reproducible test batch.

    kind: "mixed" (classes of 2-4 plus singleton classes), "pk" (classes of exactly 4, as
    a P×K sampler gives; B divisible by 4), "large_classes" (classes of 32, B divisible by
    32: more positives per anchor than the scan strategy takes), "no_positive" (all labels
    distinct), "one_class" (every label equal: no negatives).
    """
    rng = np.random.default_rng(seed)
    if kind == "pk":
        labels = rng.permutation(np.repeat(np.arange(batch // 4), 4))
    elif kind == "large_classes":
        labels = rng.permutation(np.repeat(np.arange(batch // 32), 32))
    elif kind == "no_positive":
        labels = rng.permutation(batch) + 7
    elif kind == "one_class":
        labels = np.full(batch, 3)
    elif kind == "mixed":
        labels = []
        next_label = 0
        while len(labels) < batch:
            size = int(rng.choice([1, 2, 3, 4]))
            labels += [next_label] * size
            next_label += 1
        labels = labels[:batch]
        labels[-1] = next_label  # at least one singleton class in every mixed batch
        labels = rng.permutation(np.asarray(labels))
    else:
        raise ValueError(kind)
    embeddings = rng.normal(size=(batch, dim))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return labels.astype("int32"), embeddings.astype("float32")
