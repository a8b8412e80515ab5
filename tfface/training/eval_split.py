"""`--eval_data=split`: an identity-disjoint evaluation split of the training data.

A run on the user's own photos (`--data=folder:...`) without `--eval_data` fits its
threshold on faces like the ones it will meet: a seeded choice of identities is held out of
training and becomes the verification pairs. The split depends only on the labels and
`seed`, so a resumed run trains on the same identities.

- held out: `SPLIT_FRACTION` of the identities (at least `MIN_SPLIT_IDENTITIES`, at most
  `MAX_SPLIT_IDENTITIES`), drawn among those with two or more images (a matched pair
  needs two); of each, at most `MAX_SPLIT_IMAGES_PER_IDENTITY` images (seeded) make the
  pairs, the others are counted as held out but unused (never trained on);
- pairs: LFW layout over identity-disjoint folds (`tfface.eval.pairs`), up to 10 folds
  of up to 300 matched and 300 mismatched pairs, fewer where the split is small.

NumPy only: train.py checks the split's size from the folder listing before TensorFlow
loads (`check_split_size`).
"""

import dataclasses

import numpy as np

SPLIT_FRACTION = 0.2
MIN_SPLIT_IDENTITIES = 4
MAX_SPLIT_IDENTITIES = 100
MAX_SPLIT_IMAGES_PER_IDENTITY = 10
_PAIRS_PER_FOLD = (300, 200, 100, 50, 20, 10, 5, 2, 1)


@dataclasses.dataclass(frozen=True)
class EvalSplit:
    """Which examples train and which make the held-out pairs.

    Attributes:
        train_indices: int64 example indices left for training (identities not held out).
        eval_indices: int64 example indices of the pair images.
        eval_identities: int64 labels of the held-out identities.
        unused_images: images of held-out identities beyond the per-identity cap (in
            neither set).
    """

    train_indices: np.ndarray
    eval_indices: np.ndarray
    eval_identities: np.ndarray
    unused_images: int

    def describe(self, data):
        unused = f", {self.unused_images} more held out unused" if self.unused_images else ""
        return (
            f"split of {data}: {len(self.eval_identities)} held-out identities, "
            f"{len(self.eval_indices)} images{unused}"
        )


def split_size(counts):
    """How many identities to hold out for per-identity image `counts` (before clipping
    to the identities that have two or more images)."""
    wanted = int(round(SPLIT_FRACTION * len(counts)))
    return min(max(wanted, MIN_SPLIT_IDENTITIES), MAX_SPLIT_IDENTITIES)


def check_split_size(counts, identities_per_batch, data):
    """Raises ValueError (naming the numbers and `--eval_data`) when data with these
    per-identity image counts is too small for a held-out split plus P×K training."""
    counts = np.asarray(counts, np.int64)
    held = split_size(counts)
    eligible = int(np.sum(counts >= 2))
    need_train = max(2, identities_per_batch)
    if eligible < held or len(counts) - held < need_train:
        raise ValueError(
            f"--data={data} holds {len(counts)} identities ({eligible} with >= 2 images, "
            f"{int(counts.sum())} images): too few for the default evaluation, an "
            f"identity-disjoint split of it. The split holds out {held} identities with >= 2 "
            f"images and training then needs --identities_per_batch={identities_per_batch} "
            f"(at least {need_train}) of the others: {held + need_train} identities in all. "
            "Pass held-out pairs of your own faces with --eval_data=lfw:PAIRS_TXT,IMAGES_DIR "
            "or bin:PATH (or --eval_data=synthetic, which calibrates the threshold on "
            "synthetic faces), lower --identities_per_batch, or add identities."
        )


def plan_split(labels, seed, identities_per_batch, data):
    """The `EvalSplit` of example `labels` (int [N], identity per example) for `seed`."""
    labels = np.asarray(labels, np.int64)
    counts = np.bincount(labels) if labels.size else np.zeros(0, np.int64)
    present = np.flatnonzero(counts > 0)
    check_split_size(counts[present], identities_per_batch, data)
    rng = np.random.default_rng(seed)
    eligible = present[counts[present] >= 2]
    held = np.sort(rng.choice(eligible, size=split_size(counts[present]), replace=False))
    eval_indices, unused = [], 0
    for label in held:
        members = np.flatnonzero(labels == label)
        if len(members) > MAX_SPLIT_IMAGES_PER_IDENTITY:
            unused += len(members) - MAX_SPLIT_IMAGES_PER_IDENTITY
            members = np.sort(rng.choice(members, MAX_SPLIT_IMAGES_PER_IDENTITY, replace=False))
        eval_indices.append(members)
    return EvalSplit(
        train_indices=np.flatnonzero(~np.isin(labels, held)).astype(np.int64),
        eval_indices=np.concatenate(eval_indices).astype(np.int64),
        eval_identities=held.astype(np.int64),
        unused_images=int(unused),
    )


def split_pairs(labels, seed):
    """LFW-layout pairs over the held-out `labels` (int [M]): as many folds (up to 10, two
    identities each) and pairs per fold (up to 300) as the split allows."""
    from tfface.eval.pairs import make_lfw_style_pairs

    labels = np.asarray(labels, np.int64)
    num_folds = min(10, len(np.unique(labels)) // 2)
    error = None
    for pairs_per_fold in _PAIRS_PER_FOLD:
        try:
            return make_lfw_style_pairs(
                labels, num_folds=num_folds, pairs_per_fold=pairs_per_fold, seed=seed
            )
        except ValueError as e:
            error = e
    raise ValueError(f"The held-out split cannot form verification pairs: {error}")
