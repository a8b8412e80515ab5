"""Held-out verification during training: one fixed pair set, three models on it.

`PairSet` holds decoded images and the pair layout (10 folds, LFW order). The trainer
evaluates the raw-pixel baseline, the freshly initialised network and the trained network
on the *same* pairs, so the three figures are comparable.

Eval data specs (train.py `--eval_data`):
- `synthetic` (default): held-out synthetic identities (ids 10**6 + i, never trained on),
  LFW-style pairs: 10 identity-disjoint folds × (300 matched + 300 mismatched).
- `bin:PATH`: an insightface `.bin` pack (lfw.bin, cfp_fp.bin, …).
- `lfw:PAIRS_TXT,IMAGES_DIR`: LFW `pairs.txt` and the image folder.
"""

import dataclasses
import os

import numpy as np

HELDOUT_IDENTITIES = 100
HELDOUT_IMAGES_PER_IDENTITY = 10


@dataclasses.dataclass
class PairSet:
    """Images and pairs: pair i compares `images[first[i]]` with `images[second[i]]`."""

    name: str
    images: np.ndarray  # uint8 [N, S, S, 3]
    first: np.ndarray  # int64 [P]
    second: np.ndarray  # int64 [P]
    issame: np.ndarray  # bool [P]
    num_folds: int
    labels: np.ndarray = None  # int64 [N] when known (synthetic), for the scatter plot
    flip: bool = False

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
    """Held-out synthetic identities with LFW-style pairs (6,000 pairs by default)."""
    from tfface.data import synthetic
    from tfface.eval import make_lfw_style_pairs

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


def _decode_all(items, image_size, what):
    from tfface.eval.embed import decode_image

    return np.stack(
        [decode_image(b, image_size, source=f"{what} image {i}") for i, b in enumerate(items)]
    )


def load_pair_set(spec, image_size, seed=0):
    """The `PairSet` named by `spec` (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"`eval_data` must be a non-empty string. Received: {spec!r}")
    kind, _, arg = spec.partition(":")
    if kind == "synthetic" and not arg:
        return synthetic_pairs(image_size, seed=seed)
    if kind == "bin" and arg:
        from tfface.eval import load_bin

        bins, issame = load_bin(arg)
        images = _decode_all(bins, image_size, arg)
        n = len(issame)
        return PairSet(
            name=os.path.basename(arg),
            images=images,
            first=np.arange(0, 2 * n, 2, dtype=np.int64),
            second=np.arange(1, 2 * n, 2, dtype=np.int64),
            issame=issame,
            num_folds=10,
            flip=True,
        )
    if kind == "lfw" and "," in arg:
        from tfface.eval import pair_paths
        from tfface.eval import read_pairs

        pairs_txt, images_dir = arg.split(",", 1)
        pairs = read_pairs(pairs_txt)
        paths1, paths2, issame = pair_paths(pairs, images_dir)
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
    raise ValueError(
        "`eval_data` must be 'synthetic', 'bin:PATH' or 'lfw:PAIRS_TXT,IMAGES_DIR'. "
        f"Received: eval_data={spec!r}"
    )


def embed_images(embed_fn, images, batch_size=256, flip=False):
    """Unit embeddings of uint8 images through `embed_fn` (float32 0–255 in, [N, D] out)."""
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].astype(np.float32)
        e = np.asarray(embed_fn(x), dtype=np.float32)
        if flip:
            e = e + np.asarray(embed_fn(x[:, :, ::-1]), dtype=np.float32)
        out.append(e)
    e = np.concatenate(out)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def evaluate_embeddings(pair_set, embeddings):
    """`tfface.eval.verification.evaluate` on the pairs of `pair_set` (cosine)."""
    from tfface.eval import evaluate

    return evaluate(
        embeddings[pair_set.first],
        embeddings[pair_set.second],
        pair_set.issame,
        num_folds=pair_set.num_folds,
    )


def raw_pixel_result(pair_set):
    from tfface.eval import raw_pixel_embeddings

    return evaluate_embeddings(pair_set, raw_pixel_embeddings(pair_set.images))


def calibrated_threshold(pair_set, embeddings):
    """The cosine threshold that maximises accuracy over all pairs (for export)."""
    from tfface.eval import verification

    scores = np.sum(embeddings[pair_set.first] * embeddings[pair_set.second], axis=1)
    threshold, accuracy = verification.best_accuracy_threshold(scores, pair_set.issame)
    return float(threshold), float(accuracy)


def write_scatter(path, embeddings, labels, max_identities=10, title=None):
    """2-D scatter of held-out embeddings of a few identities (first two principal axes)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ids = np.unique(labels)[:max_identities]
    mask = np.isin(labels, ids)
    x = embeddings[mask] - embeddings[mask].mean(axis=0)
    # Principal axes via SVD: a linear projection, so distances are not warped like t-SNE.
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    try:
        for k in ids:
            sel = labels[mask] == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=12, label=str(int(k)))
        ax.set_title(title or f"held-out embeddings, {len(ids)} identities (PCA)", fontsize=10)
        ax.legend(fontsize=6, ncol=2, loc="best")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
