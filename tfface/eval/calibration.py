"""Operating points for a deployment: the threshold at a target FAR (1:1) or FPIR (open-set
1:N), with what it measures there. Plain NumPy; `tfface calibrate` runs these.

- 1:1 (`far_operating_point`): over verification pairs, the lowest threshold whose FAR
  does not exceed the target (`verification.far_threshold`, rule "facenet"), then TAR and
  the achieved FAR at it.
- Open-set 1:N (`open_set_operating_point`): the enrolled people are labelled embeddings
  (a gallery's rows, or a people folder); strangers are embeddings of people who are not
  enrolled. The threshold keeps at most floor(FPIR·n) of the n strangers' best scores at
  or above it (`identification.calibrate_threshold`). TPIR is measured leave-one-out: each
  enrolled embedding of a person with two or more is a mated probe against the gallery
  without that embedding, a hit when its person ranks first and scores at or above the
  threshold.

A target below 1/n cannot be resolved on n impostors: `needed_impostors(target)` =
ceil(1/target) is the least count that can (FAR = 1e-4 needs 10,000 different-person
pairs); callers refuse smaller sets instead of reporting a threshold the data cannot
support.
"""

import dataclasses
import math

import numpy as np

from tfface.eval import identification
from tfface.eval import verification
from tfface.unit_vectors import l2_normalize_rows


def needed_impostors(target):
    """The least number of impostor scores (different-person pairs, or strangers) at which
    a rate of `target` can be measured: ceil(1/target)."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be in (0, 1). Received: target={target}")
    return math.ceil(1.0 / target - 1e-9)


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it does on the data it was fitted on.

    Attributes:
        threshold: accept when similarity >= threshold.
        target: {"far": f} or {"fpir": f}.
        false_accepts, impostors: impostor scores at/above the threshold, and their count
            (different-person pairs, or stranger faces).
        true_accepts, genuines: genuine attempts accepted, and their count (same-person
            pairs, or mated probes ranked first at/above the threshold); genuines may be 0.
    """

    threshold: float
    target: dict
    false_accepts: int
    impostors: int
    true_accepts: int
    genuines: int

    @property
    def false_rate(self):
        return self.false_accepts / self.impostors

    @property
    def true_rate(self):
        return self.true_accepts / self.genuines if self.genuines else None

    def to_dict(self):
        return dataclasses.asdict(self) | {
            "false_rate": self.false_rate,
            "true_rate": self.true_rate,
        }


def _check_enough(impostors, target, what):
    needed = needed_impostors(target)
    if impostors < needed:
        raise ValueError(
            f"{what} {target:g} needs at least {needed} impostor scores (1/{target:g}); "
            f"these data have {impostors}"
        )


def far_operating_point(scores, issame, far):
    """The 1:1 operating point at FAR <= `far` over pair `scores` (higher = more alike)."""
    scores = np.asarray(scores, np.float64)
    issame = np.asarray(issame, bool)
    _check_enough(int((~issame).sum()), far, "FAR")
    threshold = verification.far_threshold(scores, issame, far, rule="facenet")
    accept = scores >= threshold
    return OperatingPoint(
        threshold=float(threshold),
        target={"far": far},
        false_accepts=int((accept & ~issame).sum()),
        impostors=int((~issame).sum()),
        true_accepts=int((accept & issame).sum()),
        genuines=int(issame.sum()),
    )


def all_pairs(embeddings, labels):
    """(scores, issame) of every pair i < j of labelled embeddings (cosine)."""
    x = l2_normalize_rows(np.asarray(embeddings, np.float32), epsilon=1e-12)
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(x), k=1)
    scores = np.einsum("pd,pd->p", x[i], x[j]).astype(np.float64)
    return scores, labels[i] == labels[j]


def leave_one_out_scores(embeddings, labels, by="max", chunk=2048):
    """Mated-probe scores against a gallery of the other embeddings.

    Returns (true [M], rank1 [M] bool, probe rows [M]): for each embedding whose label has
    at least two embeddings, its score for its own identity without itself, and whether
    no other identity scores as high (ties count against, as `identification`).
    """
    if by not in ("max", "mean"):
        raise ValueError(f"by must be 'max' or 'mean'. Received: by={by!r}")
    x = l2_normalize_rows(np.asarray(embeddings, np.float32), epsilon=1e-12)
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    x, labels = x[order], labels[order]
    ids, starts, counts = np.unique(labels, return_index=True, return_counts=True)
    column = np.repeat(np.arange(len(ids)), counts)
    probes = np.flatnonzero(counts[column] >= 2)
    true, rank1 = [], []
    for p0 in range(0, len(probes), chunk):
        rows = probes[p0 : p0 + chunk]
        sims = x[rows] @ x.T
        own = column[rows]
        if by == "max":
            sims[np.arange(len(rows)), rows] = -np.inf  # the probe is not in its gallery
            scores = np.maximum.reduceat(sims, starts, axis=1)
        else:
            scores = np.add.reduceat(sims, starts, axis=1)
            scores[np.arange(len(rows)), own] -= sims[np.arange(len(rows)), rows]
            sizes = np.broadcast_to(counts, scores.shape).astype(np.float32)
            sizes[np.arange(len(rows)), own] -= 1
            scores = scores / sizes
        mine = scores[np.arange(len(rows)), own]
        true.append(mine)
        rank1.append((scores >= mine[:, None]).sum(axis=1) == 1)
    if not true:
        return np.zeros(0, np.float32), np.zeros(0, bool), order[probes]
    return np.concatenate(true), np.concatenate(rank1), order[probes]


def open_set_operating_point(enrolled, labels, strangers, fpir, by="max"):
    """The open-set operating point at FPIR <= `fpir`.

    Args:
        enrolled: [N, D] embeddings of the enrolled people; labels: [N] their identities.
        strangers: [S, D] embeddings of faces of people who are not enrolled.
        fpir: the target false-positive identification rate.
        by: how a person scores ("max": best embedding, "mean"), as `Gallery.search`.
    """
    strangers = np.asarray(strangers, np.float32)
    _check_enough(len(strangers), fpir, "FPIR")
    scores, _ = identification.identification_scores(strangers, enrolled, labels, by=by)
    top = scores.max(axis=1).astype(np.float64)  # float64: the threshold sits an ulp above one
    threshold, _ = identification.calibrate_threshold(top, fpir)
    true, rank1, _ = leave_one_out_scores(enrolled, labels, by=by)
    true = true.astype(np.float64)
    return OperatingPoint(
        threshold=float(threshold),
        target={"fpir": fpir},
        false_accepts=int((top >= threshold).sum()),
        impostors=len(top),
        true_accepts=int((rank1 & (true >= threshold)).sum()),
        genuines=len(true),
    )
