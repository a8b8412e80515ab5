"""LFW-style verification pairs for held-out identities, and evaluation on them.

`make_lfw_style_pairs` lays pairs out exactly like LFW's `pairs.txt` (view 2): `num_folds`
sets, each `pairs_per_fold` matched pairs followed by `pairs_per_fold` mismatched pairs,
and, as in LFW, the sets use disjoint identities, so no identity's images are seen on both
sides of a train/test fold split when the threshold is chosen.

Sampling (deterministic for a given `seed`):
1. Identities are shuffled, then dealt to folds: identities with >= 2 images greedily
   (largest number of matched pairs first) to a fold that still has fewer than two
   identities if any, else to the fold with the fewest matched pairs so far; then
   single-image identities to the fold with the fewest identities.
2. In each fold, matched pairs are drawn uniformly without replacement from all distinct
   same-identity image pairs, mismatched pairs uniformly without replacement from all
   distinct different-identity image pairs of that fold. The first image of a pair has
   the lower index.
"""

import dataclasses
import math

import numpy as np

from tfface.eval import verification

# Above this many candidate pairs in a fold, draw by rejection instead of enumerating.
_ENUMERATE_LIMIT = 200_000


@dataclasses.dataclass(frozen=True)
class PairIndices:
    """Pairs of example indices in LFW layout.

    Attributes:
        first, second: int64 [N] indices into the labels/embeddings the pairs were made for.
        issame: bool [N].
        num_folds: the pairs form `num_folds` contiguous folds of equal size.
    """

    first: np.ndarray
    second: np.ndarray
    issame: np.ndarray
    num_folds: int

    def __len__(self):
        return int(self.first.shape[0])


def _sample_matched(groups, count, rng):
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    per_identity = sizes * (sizes - 1) // 2
    total = int(per_identity.sum())
    if total <= _ENUMERATE_LIMIT:
        cands = []
        for g in groups:
            if len(g) >= 2:
                a, b = np.triu_indices(len(g), k=1)
                cands.append(np.stack([g[a], g[b]], axis=1))
        cands = np.concatenate(cands)
        return cands[rng.choice(len(cands), size=count, replace=False)]
    chosen, out = set(), []
    p = per_identity / total
    while len(out) < count:
        g = groups[rng.choice(len(groups), p=p)]
        i, j = sorted(rng.choice(len(g), size=2, replace=False))
        pair = (int(g[i]), int(g[j]))
        if pair not in chosen:
            chosen.add(pair)
            out.append(pair)
    return np.array(out, dtype=np.int64)


def _sample_mismatched(groups, count, rng):
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    total = int((sizes.sum() ** 2 - np.sum(sizes**2)) // 2)
    if total <= _ENUMERATE_LIMIT:
        cands = []
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                x, y = np.meshgrid(groups[a], groups[b], indexing="ij")
                cands.append(np.stack([x.ravel(), y.ravel()], axis=1))
        cands = np.concatenate(cands)
        out = cands[rng.choice(len(cands), size=count, replace=False)]
        return np.sort(out, axis=1)
    images = np.concatenate(groups)
    owner = np.repeat(np.arange(len(groups)), sizes)
    chosen, out = set(), []
    while len(out) < count:
        i, j = rng.choice(images.size, size=2, replace=False)
        if owner[i] == owner[j]:
            continue
        pair = tuple(sorted((int(images[i]), int(images[j]))))
        if pair not in chosen:
            chosen.add(pair)
            out.append(pair)
    return np.array(out, dtype=np.int64)


def make_lfw_style_pairs(labels, num_folds=10, pairs_per_fold=300, seed=0):
    """LFW-layout verification pairs over identity-disjoint folds.

    Args:
        labels: int array [N], the identity of each example (e.g. the held-out split).
        num_folds: number of sets (LFW: 10).
        pairs_per_fold: matched pairs per set, and as many mismatched (LFW: 300).
        seed: sampling seed.

    Returns:
        A `PairIndices` of `num_folds * 2 * pairs_per_fold` pairs: fold k is pairs
        [2·k·p, 2·(k+1)·p), its first p matched, the next p mismatched.

    Raises:
        ValueError: when there are too few identities or images to give every fold two
            identities (one with >= 2 images) and enough distinct pairs; the message says
            how many are needed.

    Example:
    >>> labels = np.repeat(np.arange(40), 5)
    >>> pairs = make_lfw_style_pairs(labels, num_folds=10, pairs_per_fold=10)
    >>> len(pairs), pairs.issame[:12].tolist() == [True] * 10 + [False] * 2
    (200, True)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"`labels` must be a 1-D integer array. Received: shape={labels.shape}, "
            f"dtype={labels.dtype}"
        )
    if num_folds < 2:
        raise ValueError(f"`num_folds` must be >= 2. Received: num_folds={num_folds}")
    if pairs_per_fold < 1:
        raise ValueError(f"`pairs_per_fold` must be >= 1. Received: {pairs_per_fold}")
    rng = np.random.default_rng(seed)
    identities, inverse = np.unique(labels, return_inverse=True)
    groups = [np.flatnonzero(inverse == k) for k in range(identities.size)]
    multi = [k for k in range(identities.size) if len(groups[k]) >= 2]
    if len(multi) < num_folds or identities.size < 2 * num_folds:
        raise ValueError(
            f"LFW-style pairs with identity-disjoint folds need at least {2 * num_folds} "
            f"identities, {num_folds} of them with >= 2 images (two per fold, one able to "
            f"form a matched pair), for num_folds={num_folds}. Received: {identities.size} "
            f"identities, {len(multi)} with >= 2 images. Hold out more identities or use "
            "fewer folds."
        )

    order = rng.permutation(identities.size)
    fold_ids = [[] for _ in range(num_folds)]
    fold_matched = np.zeros(num_folds, dtype=np.int64)
    capacity = {k: len(groups[k]) * (len(groups[k]) - 1) // 2 for k in range(identities.size)}
    multi_sorted = sorted(
        (k for k in order if capacity[k] > 0), key=lambda k: -capacity[k]
    )  # stable: ties keep the shuffled order
    for k in multi_sorted:
        # Folds still short of two identities first, so one big identity cannot leave its
        # fold without mismatched pairs; then the fold with the fewest matched pairs.
        f = min(range(num_folds), key=lambda i: (len(fold_ids[i]) >= 2, fold_matched[i]))
        fold_ids[f].append(k)
        fold_matched[f] += capacity[k]
    for k in (k for k in order if capacity[k] == 0):
        f = int(np.argmin([len(ids) for ids in fold_ids]))
        fold_ids[f].append(k)

    first, second, issame = [], [], []
    for f, ids in enumerate(fold_ids):
        fold_groups = [groups[k] for k in ids]
        sizes = np.array([len(g) for g in fold_groups])
        n_matched = int(np.sum(sizes * (sizes - 1) // 2))
        n_mismatched = int((sizes.sum() ** 2 - np.sum(sizes**2)) // 2)
        if n_matched < pairs_per_fold or n_mismatched < pairs_per_fold or len(ids) < 2:
            raise ValueError(
                f"Fold {f} got {len(ids)} identities ({int(sizes.sum())} images) with only "
                f"{n_matched} distinct matched and {n_mismatched} distinct mismatched pairs; "
                f"pairs_per_fold={pairs_per_fold} needs at least {pairs_per_fold} of each in "
                f"every fold, i.e. about {_identities_needed(labels, num_folds, pairs_per_fold)} "
                f"identities like these in total. Received: {identities.size} identities, "
                f"{labels.size} images. Lower pairs_per_fold or hold out more identities."
            )
        matched = _sample_matched(fold_groups, pairs_per_fold, rng)
        mismatched = _sample_mismatched(fold_groups, pairs_per_fold, rng)
        for block, same in ((matched, True), (mismatched, False)):
            first.append(block[:, 0])
            second.append(block[:, 1])
            issame.append(np.full(pairs_per_fold, same))
    return PairIndices(
        first=np.concatenate(first).astype(np.int64),
        second=np.concatenate(second).astype(np.int64),
        issame=np.concatenate(issame),
        num_folds=num_folds,
    )


def _identities_needed(labels, num_folds, pairs_per_fold):
    counts = np.bincount(np.unique(labels, return_inverse=True)[1])
    per_identity = max(1.0, float(np.mean(counts * (counts - 1) / 2)))
    return num_folds * max(2, math.ceil(pairs_per_fold / per_identity))


def evaluate_embeddings_on_pairs(embeddings, pairs, metric="cosine", **kwargs):
    """`verification.evaluate` on the pairs of a `PairIndices` (folds = `pairs.num_folds`).

    Pair rows are gathered chunk by chunk, so no [num_pairs, D] copy is made (this matters
    for the raw-pixel baseline, where D = H·W·3).

    Args:
        embeddings: [N, D], indexed like the labels the pairs were made from.
        pairs: a `PairIndices`, or any object with the same `first`, `second`, `issame`
            and `num_folds` attributes (e.g. tfface.training's `PairSet`).
        metric: "cosine" or "squared_l2".
        **kwargs: `far_target`, `tar_fars`, `far_rule` for `verification.evaluate_scores`.
    """
    embeddings = np.asarray(embeddings)
    missing = [a for a in ("first", "second", "issame", "num_folds") if not hasattr(pairs, a)]
    if missing:
        raise ValueError(
            f"`pairs` must be a PairIndices (first, second, issame, num_folds). Received a "
            f"{type(pairs).__name__} without {missing}"
        )
    first = np.asarray(pairs.first, dtype=np.int64)
    second = np.asarray(pairs.second, dtype=np.int64)
    if first.ndim != 1 or first.shape != second.shape or first.size == 0:
        raise ValueError(
            f"`pairs.first` and `pairs.second` must be equal-length 1-D index arrays. "
            f"Received: shapes {first.shape} and {second.shape}"
        )
    if min(first.min(), second.min()) < 0:
        raise ValueError("`pairs` holds negative indices.")
    top = int(max(first.max(), second.max()))
    if embeddings.ndim != 2 or top >= embeddings.shape[0]:
        raise ValueError(
            f"`embeddings` must be [N, D] with N > {top} (the largest pair index). "
            f"Received: shape={embeddings.shape}"
        )
    rows = max(1, verification._CHUNK_VALUES // max(1, embeddings.shape[1]))
    scores = np.concatenate(
        [
            verification.pair_scores(
                embeddings[first[s : s + rows]], embeddings[second[s : s + rows]], metric
            )
            for s in range(0, first.size, rows)
        ]
    )
    return verification.evaluate_scores(
        scores, pairs.issame, num_folds=pairs.num_folds, metric=metric, **kwargs
    )


def raw_pixel_embeddings(images):
    """The raw-pixel baseline: each image as a flattened, mean-centred, unit-norm vector.

    Per image: flatten all H·W·C pixel values (float64), subtract that image's mean pixel
    value, divide by the L2 norm. Cosine similarity of two such vectors is the Pearson
    correlation of their pixels (normalised cross-correlation), which ignores a global
    brightness offset and contrast gain; a face model should beat it by a wide margin.

    Args:
        images: array [N, H, W, C] (any numeric dtype, e.g. uint8 0–255).

    Returns:
        float32 [N, H·W·C].

    Raises:
        ValueError: if an image is constant (it has no direction after centring).
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"`images` must be [N, ...]. Received: shape={x.shape}")
    x = x.reshape(x.shape[0], -1)
    x = x - x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    constant = np.flatnonzero(norms[:, 0] <= 1e-12 * max(1, x.shape[1]))
    if constant.size:
        raise ValueError(
            f"Images {constant[:10].tolist()} are constant; a raw-pixel embedding needs "
            "pixel variation."
        )
    return (x / norms).astype(np.float32)
