"""Slow, loop-based NumPy/`math` references for the margin heads and the center loss.

Written independently of the layers: scalar Python loops over samples, classes and
dimensions, angles through `math.acos`, cos(mθ) through `math.cos` (the layers use the
product formula and Chebyshev polynomials instead). Never import tfface here.
"""

import math

import numpy as np


def _norm(v):
    total = 0.0
    for value in v:
        total += float(value) * float(value)
    return math.sqrt(max(total, 1e-12))


def _dot(a, b):
    total = 0.0
    for u, v in zip(a, b, strict=True):
        total += float(u) * float(v)
    return total


def annealing_lambda(iteration, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0):
    return max(lambda_min, base * (1.0 + gamma * iteration) ** (-power))


def target_value(head, cos, params):
    """The margin-modified target cosine for one sample, from the papers' formulas."""
    theta = math.acos(min(1.0, max(-1.0, cos)))
    if head == "NormFace":
        return cos
    if head == "CosFace":
        return cos - params["margin"]
    if head == "ArcFace":
        m = params["margin"]
        if params.get("easy_margin", False):
            return math.cos(theta + m) if cos > 0 else cos
        if theta + m <= math.pi:
            return math.cos(theta + m)
        # insightface fallback past θ = π − m.
        return cos - math.sin(math.pi - m) * m
    if head == "CombinedMargin":
        return math.cos(params["m1"] * theta + params["m2"]) - params["m3"]
    if head in ("SphereFace", "LSoftmax"):
        m = params["margin"]
        k = min(int(math.floor(m * theta / math.pi)), m - 1)
        psi = (-1) ** k * math.cos(m * theta) - 2 * k
        lam = params["lambda"]
        return (lam * cos + psi) / (1.0 + lam)
    raise ValueError(head)


def head_logits(head, x, w, labels, params):
    """Logits [B, C]; `labels=None` gives inference logits. x [B, D], w [D, C]."""
    batch, dim = x.shape
    num_classes = w.shape[1]
    logits = np.zeros((batch, num_classes))
    for i in range(batch):
        xi = [x[i, d] for d in range(dim)]
        x_norm = _norm(xi)
        for j in range(num_classes):
            wj = [w[d, j] for d in range(dim)]
            w_norm = _norm(wj)
            cos = _dot(xi, wj) / (x_norm * w_norm)
            cos = min(1.0, max(-1.0, cos))
            value = cos
            if labels is not None and j == int(labels[i]):
                value = target_value(head, cos, params)
            if head == "SphereFace":
                magnitude = x_norm
            elif head == "LSoftmax":
                magnitude = x_norm * w_norm
            else:
                magnitude = params["scale"]
            logits[i, j] = magnitude * value
    return logits


def cosine_table(x, w):
    """(‖x_i‖ per sample, cos θ_ij per sample and column of w), clipped to [−1, 1], by loops.

    x [B, D], w [D, N]; returns a list of B norms and a B × N nested list of cosines.
    """
    batch, dim = x.shape
    norms, table = [], []
    for i in range(batch):
        xi = [x[i, d] for d in range(dim)]
        x_norm = _norm(xi)
        row = []
        for j in range(w.shape[1]):
            wj = [w[d, j] for d in range(dim)]
            row.append(min(1.0, max(-1.0, _dot(xi, wj) / (x_norm * _norm(wj)))))
        norms.append(x_norm)
        table.append(row)
    return norms, table


def cross_entropy(logits, labels):
    """Mean sparse softmax cross-entropy, one sample at a time."""
    total = 0.0
    for i in range(logits.shape[0]):
        row = [float(v) for v in logits[i]]
        top = max(row)
        log_sum = top + math.log(sum(math.exp(v - top) for v in row))
        total += log_sum - row[int(labels[i])]
    return total / logits.shape[0]


def head_loss(head, x, w, labels, params):
    return cross_entropy(head_logits(head, x, w, labels, params), labels)


def finite_difference(fn, array, eps=1e-5):
    """Central differences of scalar fn(array) w.r.t. every entry of `array` (float64)."""
    array = np.array(array, dtype=np.float64)
    grad = np.zeros_like(array)
    for index in np.ndindex(*array.shape):
        original = array[index]
        array[index] = original + eps
        plus = fn(array)
        array[index] = original - eps
        minus = fn(array)
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def center_loss_value(features, labels, centers):
    total = 0.0
    for i in range(features.shape[0]):
        c = centers[int(labels[i])]
        total += 0.5 * sum((float(a) - float(b)) ** 2 for a, b in zip(features[i], c, strict=True))
    return total / features.shape[0]


def center_update(features, labels, centers, alpha):
    """Wen et al. Eq. 4 with a loop over classes and samples; returns new centers."""
    centers = np.array(centers, dtype=np.float64)
    new = centers.copy()
    for j in range(centers.shape[0]):
        members = [i for i in range(features.shape[0]) if int(labels[i]) == j]
        if not members:
            continue
        delta = np.zeros(centers.shape[1])
        for i in members:
            for d in range(centers.shape[1]):
                delta[d] += centers[j, d] - float(features[i, d])
        delta /= 1.0 + len(members)
        new[j] = centers[j] - alpha * delta
    return new
