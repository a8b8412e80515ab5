"""LFW-style verification pairs for held-out identities, pair sets, and evaluation on them.

A `PairSet` (decoded images + pairs) is what train.py evaluates every model on; an
eval-data spec names one: `synthetic` (held-out synthetic identities), `bin:PATH` (an
insightface `.bin` pack) or `lfw:PAIRS_TXT,IMAGES_DIR[,EXT]` (`load_pair_set`).

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
import os

import numpy as np

from tfface.eval import verification
from tfface.unit_vectors import ZeroNormError
from tfface.unit_vectors import l2_normalize_rows

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
    try:
        return l2_normalize_rows(x, min_norm=1e-12 * max(1, x.shape[1])).astype(np.float32)
    except ZeroNormError as e:
        raise ValueError(
            f"Images {e.rows[:10].tolist()} are constant; a raw-pixel embedding needs "
            "pixel variation."
        ) from None


# === Pair sets: decoded images + pairs, named by an eval-data spec ===
HELDOUT_IDENTITIES = 100
HELDOUT_IMAGES_PER_IDENTITY = 10
PAIR_SPEC_FORMS = "'synthetic', 'bin:PATH' or 'lfw:PAIRS_TXT,IMAGES_DIR[,EXT]'"


@dataclasses.dataclass
class PairSet:
    """Decoded images and pairs: pair i compares `images[first[i]]` with `images[second[i]]`.

    Every model evaluated on one `PairSet` (train.py: raw pixels, the untrained and the
    trained network) sees the same pairs, so their figures are comparable.
    """

    name: str
    images: np.ndarray  # uint8 [N, S, S, 3]
    first: np.ndarray  # int64 [P]
    second: np.ndarray  # int64 [P]
    issame: np.ndarray  # bool [P]
    num_folds: int
    labels: np.ndarray = None  # int64 [N] when known (synthetic), for the scatter plot
    flip: bool = False  # add the flipped image's embedding (insightface's evaluation)

    def __len__(self):
        return int(self.issame.shape[0])


def synthetic_pairs(
    image_size,
    seed=0,
    num_identities=HELDOUT_IDENTITIES,
    images_per_identity=HELDOUT_IMAGES_PER_IDENTITY,
    num_folds=10,
    pairs_per_fold=300,
):
    """Held-out synthetic identities (ids 10**6 + i, never trained on) with LFW-style pairs
    (6,000 pairs by default)."""
    from tfface.data import synthetic

    images, labels = synthetic.heldout_images(
        num_identities, images_per_identity, image_size=image_size, seed=seed
    )
    pairs = make_lfw_style_pairs(
        labels, num_folds=num_folds, pairs_per_fold=pairs_per_fold, seed=seed
    )
    return PairSet(
        name=f"synthetic held-out ({num_identities} identities)",
        images=images,
        first=pairs.first,
        second=pairs.second,
        issame=pairs.issame,
        num_folds=pairs.num_folds,
        labels=labels,
    )


def parse_pair_spec(spec):
    """(kind, args) of an eval-data spec: ("synthetic", ()), ("bin", (path,)) or
    ("lfw", (pairs_txt, images_dir, ext)); raises ValueError naming the accepted forms."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"An eval-data spec must be a non-empty string. Received: {spec!r}")
    kind, _, arg = spec.partition(":")
    if kind == "synthetic" and not arg:
        return kind, ()
    if kind == "bin" and arg:
        return kind, (arg,)
    parts = arg.split(",")
    if kind == "lfw" and len(parts) in (2, 3) and all(parts):
        ext = parts[2].lstrip(".") if len(parts) == 3 else "jpg"
        return kind, (parts[0], parts[1], ext)
    raise ValueError(f"The eval-data spec must be {PAIR_SPEC_FORMS}. Received: {spec!r}")


def check_pair_spec(spec):
    """Cheap checks of an eval-data spec before any work: the files it names exist (every
    image an LFW pairs file references included). Returns `parse_pair_spec(spec)`."""
    from tfface.eval import lfw

    kind, args = parse_pair_spec(spec)
    if kind == "bin" and not os.path.isfile(args[0]):
        raise ValueError(f"{args[0]!r} is not a file.")
    if kind == "lfw":
        pairs_txt, images_dir, ext = args
        if not os.path.isfile(pairs_txt):
            raise ValueError(f"{pairs_txt!r} is not a file.")
        if not os.path.isdir(images_dir):
            raise ValueError(f"{images_dir!r} is not a directory.")
        try:
            lfw.pair_paths(lfw.read_pairs(pairs_txt), images_dir, ext=ext)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from None
    return kind, args


def _decode_all(items, image_size, what):
    from tfface.eval.embed import decode_image

    return np.stack(
        [decode_image(b, image_size, source=f"{what} image {i}") for i, b in enumerate(items)]
    )


def load_pair_set(spec, image_size, seed=0):
    """The `PairSet` named by an eval-data spec, images decoded at `image_size`.

    - `synthetic`: `synthetic_pairs(image_size, seed)`;
    - `bin:PATH`: an insightface `.bin` pack (lfw.bin, cfp_fp.bin, …), 10 folds;
    - `lfw:PAIRS_TXT,IMAGES_DIR[,EXT]`: LFW `pairs.txt` (its sets are the folds) and the
      images `IMAGES_DIR/<name>/<name>_<n:04d>.<EXT>` (EXT default jpg, as
      `python -m tfface.eval lfw --ext`).
    """
    kind, args = check_pair_spec(spec)
    if kind == "synthetic":
        return synthetic_pairs(image_size, seed=seed)
    if kind == "bin":
        from tfface.eval.bin_pack import load_bin

        bins, issame = load_bin(args[0])
        n = len(issame)
        return PairSet(
            name=os.path.basename(args[0]),
            images=_decode_all(bins, image_size, args[0]),
            first=np.arange(0, 2 * n, 2, dtype=np.int64),
            second=np.arange(1, 2 * n, 2, dtype=np.int64),
            issame=issame,
            num_folds=10,
            flip=True,
        )
    from tfface.eval import lfw

    pairs_txt, images_dir, ext = args
    pairs = lfw.read_pairs(pairs_txt)
    paths1, paths2, issame = lfw.pair_paths(pairs, images_dir, ext=ext)
    unique = sorted(set(paths1) | set(paths2))
    index = {p: i for i, p in enumerate(unique)}
    return PairSet(
        name=f"LFW {os.path.basename(pairs_txt)}",
        images=_decode_all(unique, image_size, images_dir),
        first=np.array([index[p] for p in paths1], np.int64),
        second=np.array([index[p] for p in paths2], np.int64),
        issame=issame,
        num_folds=pairs.num_sets,
        flip=True,
    )


def calibrated_threshold(embeddings, pairs):
    """(threshold, accuracy): the cosine cut that maximises accuracy over all `pairs`."""
    first = np.asarray(pairs.first, dtype=np.int64)
    second = np.asarray(pairs.second, dtype=np.int64)
    scores = np.sum(embeddings[first] * embeddings[second], axis=1)
    threshold, accuracy = verification.best_accuracy_threshold(scores, pairs.issame)
    return float(threshold), float(accuracy)
