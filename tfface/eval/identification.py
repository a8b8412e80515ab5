"""Open-set 1:N identification (IJB-C / MegaFace style): CMC, TPIR at FPIR, thresholds.

Protocol, on labelled embeddings of held-out identities (`split_open_set`):
- A fraction of the identities with enough images is *enrolled*: `gallery_per_identity`
  of each one's images form its gallery template; its other images are *mated* probes.
- Every image of the other identities is a *non-mated* probe (a distractor: someone who
  is not in the gallery and should be rejected).

Scores: a probe's score for a gallery identity is its best cosine similarity over the
identity's template images (`by="max"`) or the mean (`by="mean"`); embeddings are
L2-normalised first. Metrics (Grother et al., NIST IR 8238 terms):
- CMC(r): fraction of mated probes whose identity is among the top r gallery identities.
  Rank = 1 + number of *other* identities scoring >= the true one (ties count against).
- FPIR(t): fraction of non-mated probes whose top score is >= t (a false alarm).
- TPIR(t) (= DIR at rank 1 = 1 − FNIR): fraction of mated probes whose true identity is
  ranked first *and* scores >= t.
- The threshold for a target FPIR f is calibrated on the non-mated top scores: with n
  of them, at most floor(f·n) may reach it, so it is set just above the
  (floor(f·n)+1)-th highest. FPIR below 1/n cannot be measured: `fpir_resolution` says
  so and `achieved_fpir` gives the real rate.
"""

import dataclasses
import json

import numpy as np

from tfface.unit_vectors import l2_normalize_rows

DEFAULT_RANKS = (1, 5, 10)
DEFAULT_FPIRS = (1e-1, 1e-2)


@dataclasses.dataclass(frozen=True)
class OpenSetSplit:
    """Indices into the labelled set: gallery templates, mated and non-mated probes."""

    gallery: np.ndarray
    mated: np.ndarray
    nonmated: np.ndarray


@dataclasses.dataclass(frozen=True)
class IdentificationResult:
    """Open-set identification metrics; see the module docstring for definitions.

    Attributes:
        cmc: {rank: identification rate}.
        tpir: {target FPIR: TPIR at the calibrated threshold}.
        thresholds: {target FPIR: calibrated threshold}.
        achieved_fpir: {target FPIR: FPIR actually reached on the non-mated probes}.
        fpir_resolution: 1 / number of non-mated probes (no smaller FPIR is measurable).
        num_gallery_identities, num_mated, num_nonmated: the split's sizes.
        by: "max" or "mean".
    """

    cmc: dict
    tpir: dict
    thresholds: dict
    achieved_fpir: dict
    fpir_resolution: float
    num_gallery_identities: int
    num_mated: int
    num_nonmated: int
    by: str

    def to_dict(self):
        return {
            k: ({str(kk): vv for kk, vv in v.items()} if isinstance(v, dict) else v)
            for k, v in dataclasses.asdict(self).items()
        }


def split_open_set(labels, *, gallery_per_identity=1, enrolled_fraction=0.5, seed=0):
    """Splits labelled images into gallery templates, mated and non-mated probes.

    Identities with more than `gallery_per_identity` images can be enrolled; a random
    `enrolled_fraction` of them is (at least one). All other identities' images are
    non-mated probes. Deterministic for a given `seed`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D. Received: labels.shape={labels.shape}")
    if gallery_per_identity < 1:
        raise ValueError(
            f"gallery_per_identity must be >= 1. Received: gallery_per_identity="
            f"{gallery_per_identity}"
        )
    if not 0 < enrolled_fraction < 1:
        raise ValueError(
            f"enrolled_fraction must be in (0, 1). Received: enrolled_fraction={enrolled_fraction}"
        )
    rng = np.random.default_rng(seed)
    ids, counts = np.unique(labels, return_counts=True)
    eligible = ids[counts > gallery_per_identity]
    if eligible.size == 0:
        raise ValueError(
            f"No identity has more than gallery_per_identity={gallery_per_identity} images, "
            "so no mated probe exists"
        )
    enrolled = rng.permutation(eligible)[: max(1, int(round(enrolled_fraction * eligible.size)))]
    enrolled_set = set(enrolled.tolist())
    gallery, mated, nonmated = [], [], []
    for identity in ids:
        idx = rng.permutation(np.flatnonzero(labels == identity))
        if identity in enrolled_set:
            gallery.extend(idx[:gallery_per_identity])
            mated.extend(idx[gallery_per_identity:])
        else:
            nonmated.extend(idx)
    as_idx = lambda x: np.sort(np.asarray(x, np.int64))
    return OpenSetSplit(as_idx(gallery), as_idx(mated), as_idx(nonmated))


def _unit(x):
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError(f"embeddings must be a finite [n, D] array. Received: shape={x.shape}")
    return l2_normalize_rows(x, epsilon=1e-12)


def identification_scores(probes, gallery, gallery_labels, by="max", chunk=4096):
    """[P, G] probe-to-identity scores and the G gallery identity labels (sorted).

    Probes are processed `chunk` at a time, so memory is chunk × gallery images.
    """
    if by not in ("max", "mean"):
        raise ValueError(f"by must be 'max' or 'mean'. Received: by={by!r}")
    probes, gallery = _unit(probes), _unit(gallery)
    gallery_labels = np.asarray(gallery_labels)
    order = np.argsort(gallery_labels, kind="stable")
    gallery, gallery_labels = gallery[order], gallery_labels[order]
    ids, starts, counts = np.unique(gallery_labels, return_index=True, return_counts=True)
    scores = np.empty((len(probes), len(ids)), np.float32)
    for p0 in range(0, len(probes), chunk):
        sims = probes[p0 : p0 + chunk] @ gallery.T
        if by == "max":
            scores[p0 : p0 + chunk] = np.maximum.reduceat(sims, starts, axis=1)
        else:
            scores[p0 : p0 + chunk] = np.add.reduceat(sims, starts, axis=1) / counts
    return scores, ids


def calibrate_threshold(nonmated_top_scores, target_fpir):
    """Threshold at which at most floor(target_fpir · n) non-mated probes are accepted.

    Returns (threshold, achieved FPIR). A probe is accepted when its score >= threshold.
    """
    s = np.sort(np.asarray(nonmated_top_scores, np.float64))[::-1]
    if s.size == 0:
        raise ValueError("calibrate_threshold needs at least one non-mated score")
    if not 0 < target_fpir < 1:
        raise ValueError(f"target_fpir must be in (0, 1). Received: target_fpir={target_fpir}")
    allowed = int(np.floor(target_fpir * s.size))
    threshold = float(np.nextafter(s[allowed], np.inf)) if allowed < s.size else float(s[-1])
    return threshold, float(np.mean(s >= threshold))


def evaluate_scores(
    scores, gallery_ids, probe_labels, mated, ranks=DEFAULT_RANKS, fpirs=DEFAULT_FPIRS, by="max"
):
    """Metrics from a [P, G] score matrix.

    Args:
        scores: [P, G] probe-to-identity scores.
        gallery_ids: [G] identity label of each column.
        probe_labels: [P] probe identity labels.
        mated: [P] bool, the probe's identity is in the gallery.
    """
    scores = np.asarray(scores, np.float64)
    gallery_ids = np.asarray(gallery_ids)
    probe_labels = np.asarray(probe_labels)
    mated = np.asarray(mated, bool)
    if not mated.any() or mated.all():
        raise ValueError("Open-set evaluation needs both mated and non-mated probes")
    col = {g: j for j, g in enumerate(gallery_ids.tolist())}
    m_scores = scores[mated]
    true_col = np.array([col[label] for label in probe_labels[mated].tolist()])
    true = m_scores[np.arange(len(true_col)), true_col]
    others_ge = (m_scores >= true[:, None]).sum(axis=1) - 1
    rank = 1 + others_ge
    nonmated_top = scores[~mated].max(axis=1)
    thresholds, achieved, tpir = {}, {}, {}
    for f in fpirs:
        t, a = calibrate_threshold(nonmated_top, f)
        thresholds[f], achieved[f] = t, a
        tpir[f] = float(np.mean((rank == 1) & (true >= t)))
    return IdentificationResult(
        cmc={r: float(np.mean(rank <= r)) for r in ranks},
        tpir=tpir,
        thresholds=thresholds,
        achieved_fpir=achieved,
        fpir_resolution=1.0 / int((~mated).sum()),
        num_gallery_identities=len(gallery_ids),
        num_mated=int(mated.sum()),
        num_nonmated=int((~mated).sum()),
        by=by,
    )


def evaluate_identification(
    embeddings,
    labels,
    *,
    ranks=DEFAULT_RANKS,
    fpirs=DEFAULT_FPIRS,
    gallery_per_identity=1,
    enrolled_fraction=0.5,
    by="max",
    seed=0,
):
    """Open-set identification of labelled embeddings (held-out identities).

    Splits with `split_open_set`, scores with `identification_scores` and returns an
    `IdentificationResult` (CMC at `ranks`, TPIR and thresholds at `fpirs`).

    Example:
    ```python
    r = evaluate_identification(emb, labels)
    print(r.cmc[1], r.tpir[1e-2])
    ```
    """
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels)
    if len(embeddings) != len(labels):
        raise ValueError(
            f"embeddings and labels differ in length: {len(embeddings)} vs {len(labels)}"
        )
    split = split_open_set(
        labels,
        gallery_per_identity=gallery_per_identity,
        enrolled_fraction=enrolled_fraction,
        seed=seed,
    )
    probes = np.concatenate([split.mated, split.nonmated])
    scores, ids = identification_scores(
        embeddings[probes], embeddings[split.gallery], labels[split.gallery], by=by
    )
    mated = np.arange(len(probes)) < len(split.mated)
    return evaluate_scores(scores, ids, labels[probes], mated, ranks, fpirs, by)


def format_identification(result, name=""):
    """One line: rank-1/5/10 and TPIR@FPIR with thresholds."""
    cmc = " ".join(f"rank-{r} {v:.4f}" for r, v in result.cmc.items())
    tpir = " ".join(
        f"TPIR@FPIR={f:g} {v:.4f} (t={result.thresholds[f]:.3f})" for f, v in result.tpir.items()
    )
    head = f"{name}: " if name else ""
    return (
        f"{head}{cmc}  {tpir}  [{result.num_gallery_identities} enrolled, {result.num_mated} "
        f"mated / {result.num_nonmated} non-mated probes]"
    )


def write_identification_report(path, results):
    """Writes {name: IdentificationResult} as JSON."""
    with open(path, "w") as f:
        json.dump({k: r.to_dict() for k, r in results.items()}, f, indent=2)
