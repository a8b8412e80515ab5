"""Face verification metrics: the LFW 10-fold protocol, VAL@FAR, ROC AUC, EER, TAR@FAR.

Everything here is plain NumPy (TensorFlow is not needed for the maths; matplotlib is
imported only by `write_report`).

Score convention: every metric is turned into a *score where higher means more similar*,
and a pair is accepted as "same" when `score >= threshold`.
- `metric="cosine"` (default): score = cos(e1, e2) after L2-normalising both embeddings.
- `metric="squared_l2"`: score = −‖e1 − e2‖² on L2-normalised embeddings
  (= 2·cos − 2, so it ranks pairs exactly like cosine; thresholds are negated distances).

Protocol (LFW view 2, as facenet's `lfw.evaluate`):
- Pairs are split into `num_folds` contiguous folds in input order, never shuffled:
  fold k holds pairs [k·n/F, (k+1)·n/F) (when n is not divisible by F the first n mod F
  folds get one extra pair, like sklearn's `KFold(shuffle=False)`).
- Accuracy: for each fold, the threshold that maximises accuracy on the other F−1 folds is
  applied to the held-out fold. The search is exact: every distinct training score is a
  candidate cut, so accuracy is evaluated at every achievable operating point (facenet
  scans a fixed grid of 400 distance thresholds instead and can miss the best cut). The
  threshold applied is the midpoint between the chosen cut and the next lower training
  score (a training set accepted-all/rejected-all cut uses lowest − 1 / highest + 1).
  Ties between cuts of equal training accuracy go to the highest threshold, which is what
  facenet's `argmax` over ascending distance thresholds picks (the strictest one).
- VAL@FAR (facenet `calculate_val`): on the training folds, the threshold at which
  FAR = `far_target` is fitted (`far_threshold`), then on the held-out fold VAL =
  TA/N_same and FAR = FA/N_diff. facenet fits it with scipy's `interp1d(far, thresholds)`
  over a 0.001-step distance grid; the FAR curve is a step function, so that lands within
  a grid step of the (k+1)-th closest training impostor, k = floor(far_target · N_diff).
  The default rule "facenet" is that limit made exact: the lowest threshold whose
  training FAR does not exceed the target (the same operating-point rule as TAR@FAR
  below). `far_rule="interpolate"` instead interpolates (np.interp) between the exact
  operating points, which lands inside the gap between the k-th and (k+1)-th impostor
  (stricter, lower VAL). An LFW fold has 300 impostor pairs, so a test-fold FAR is
  either 0 or >= 1/300 ≈ 3.3e-3: the reported FAR mean is a coarse average.
- Means and standard deviations are over folds; std is the population std (ddof=0), as
  facenet's `np.std`.

Over all pairs (no folds): the ROC curve, its exact AUC (trapezoid over every distinct
threshold, equal to the Mann–Whitney U statistic with ties counted ½), the EER (where
FAR = FRR, linearly interpolated between ROC points) and TAR@FAR for FAR ∈ {1e-6 … 1e-1}
(IJB-B/C style: the highest TAR among operating points with FAR <= target;
`tar_at_far(rule="insightface")` is insightface's nearest-operating-point rule instead). A
target FAR below 1/N_impostor cannot be measured on the pairs given: it is reported as NaN
with `resolvable=False` instead of a number.
"""

import dataclasses
import json
import math
import os

import numpy as np

from tfface.unit_vectors import ZeroNormError
from tfface.unit_vectors import l2_normalize_rows

METRICS = ("cosine", "squared_l2")
DEFAULT_TAR_FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


# Rows per chunk are chosen so a float64 chunk holds about this many values (~32 MB): raw-
# pixel "embeddings" of 6,000 pairs at 112×112 would otherwise need several GB at once.
_CHUNK_VALUES = 4_000_000


def l2_normalize(embeddings, name="embeddings", offset=0):
    """Returns float64 `embeddings` [N, D] scaled to unit L2 norm; zero rows raise.

    `offset` is added to row numbers in error messages (for chunked callers).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"`{name}` must have shape [N, D]. Received: shape={x.shape}")
    if not np.all(np.isfinite(x)):
        bad = np.flatnonzero(~np.all(np.isfinite(x), axis=1)) + offset
        raise ValueError(
            f"`{name}` contains NaN or inf in rows {bad[:10].tolist()}"
            f"{' …' if bad.size > 10 else ''} ({bad.size} rows)."
        )
    try:
        return l2_normalize_rows(x)
    except ZeroNormError as e:
        zero = e.rows + offset
        raise ValueError(
            f"`{name}` has all-zero rows {zero[:10].tolist()}{' …' if zero.size > 10 else ''} "
            f"({zero.size} rows); they have no direction and cannot be compared."
        ) from None


def pair_scores(embeddings1, embeddings2, metric="cosine"):
    """Similarity scores (higher = more similar) of row-aligned embedding pairs.

    Args:
        embeddings1, embeddings2: arrays [N, D]; row i of each forms pair i.
        metric: "cosine" (cos of the angle) or "squared_l2" (−‖a − b‖² of the
            L2-normalised rows). Both L2-normalise first (in float64, in row chunks, so
            wide inputs such as raw pixels need little extra memory).

    Returns:
        float64 array [N].
    """
    if metric not in METRICS:
        raise ValueError(f"`metric` must be one of {METRICS}. Received: metric={metric!r}")
    e1 = np.asarray(embeddings1)
    e2 = np.asarray(embeddings2)
    if e1.ndim != 2 or e1.shape != e2.shape:
        raise ValueError(
            "`embeddings1` and `embeddings2` must both have shape [N, D]. "
            f"Received: {e1.shape} and {e2.shape}"
        )
    rows = max(1, _CHUNK_VALUES // max(1, e1.shape[1]))
    out = np.empty(e1.shape[0], dtype=np.float64)
    for start in range(0, e1.shape[0], rows):
        a = l2_normalize(e1[start : start + rows], "embeddings1", offset=start)
        b = l2_normalize(e2[start : start + rows], "embeddings2", offset=start)
        if metric == "cosine":
            out[start : start + rows] = np.sum(a * b, axis=1)
        else:
            out[start : start + rows] = -np.sum(np.square(a - b), axis=1)
    return out


def fold_bounds(num_pairs, num_folds):
    """[(start, stop)] of `num_folds` contiguous folds over `num_pairs` pairs (file order)."""
    if num_folds < 2:
        raise ValueError(f"`num_folds` must be >= 2. Received: num_folds={num_folds}")
    if num_pairs < num_folds:
        raise ValueError(
            f"Need at least one pair per fold. Received: num_pairs={num_pairs}, "
            f"num_folds={num_folds}"
        )
    sizes = np.full(num_folds, num_pairs // num_folds, dtype=np.int64)
    sizes[: num_pairs % num_folds] += 1
    stops = np.cumsum(sizes)
    return [(int(stop - size), int(stop)) for size, stop in zip(sizes, stops, strict=True)]


def _check_scores(scores, issame):
    scores = np.asarray(scores, dtype=np.float64)
    issame_arr = np.asarray(issame)
    if scores.ndim != 1:
        raise ValueError(f"`scores` must be 1-D. Received: shape={scores.shape}")
    if issame_arr.shape != scores.shape:
        raise ValueError(
            f"`issame` must have one entry per pair. Received: issame shape "
            f"{issame_arr.shape}, scores shape {scores.shape}"
        )
    if issame_arr.dtype != np.bool_:
        values = np.unique(issame_arr)
        if not np.all(np.isin(values, [0, 1])):
            raise ValueError(
                f"`issame` must be booleans (or 0/1). Received values: {values[:10].tolist()}"
            )
        issame_arr = issame_arr.astype(bool)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"`scores` contains NaN or inf at {np.flatnonzero(~np.isfinite(scores))}")
    return scores, issame_arr


def best_accuracy_threshold(scores, issame):
    """Exact accuracy-maximising threshold on (`scores`, `issame`).

    Every distinct score u is a candidate cut (accept iff score >= u), plus reject-all.
    The returned threshold sits halfway between the winning cut and the next lower score
    (lowest − 1 for accept-all, highest + 1 for reject-all). Ties go to the highest cut.

    Returns:
        (threshold, accuracy) as Python floats.
    """
    scores, issame = _check_scores(scores, issame)
    pos = np.sort(scores[issame])
    neg = np.sort(scores[~issame])
    cuts = np.unique(scores)  # ascending
    # accept iff score >= cut: TP = #pos >= cut, TN = #neg < cut.
    tp = pos.size - np.searchsorted(pos, cuts, side="left")
    tn = np.searchsorted(neg, cuts, side="left")
    correct = np.concatenate([tp + tn, [neg.size]])  # last entry: reject all
    best = int(np.flatnonzero(correct == correct.max())[-1])
    if best == cuts.size:
        threshold = float(cuts[-1]) + 1.0
    elif best == 0:
        threshold = float(cuts[0]) - 1.0
    else:
        lower, upper = cuts[best - 1], cuts[best]
        threshold = float(lower + (upper - lower) / 2)
        # Adjacent floats can round the midpoint onto `lower`; the cut itself is exact.
        if not lower < threshold <= upper:
            threshold = float(upper)
    return threshold, float(correct[best]) / scores.size


FAR_RULES = ("facenet", "interpolate")


def far_threshold(scores, issame, far_target, rule="facenet"):
    """Threshold at which the false-accept rate on (`scores`, `issame`) is `far_target`.

    Args:
        scores, issame: the pairs the threshold is fitted on (training folds).
        far_target: target FAR in [0, 1].
        rule: "facenet" (default): the lowest threshold whose FAR does not exceed the
            target, i.e. just above the (k+1)-th highest impostor score, k =
            floor(far_target · N_diff). This is what facenet's `interp1d` over its
            0.001-step distance grid converges to (the FAR curve is a step function, so the
            interpolation lands within one grid step of that impostor).
            "interpolate": `np.interp(far_target, FARs, thresholds)` over the exact
            operating points (every distinct impostor score v with FAR #(impostors >= v) /
            N_diff, plus FAR 0 just above the highest impostor): a threshold inside the gap
            between the k-th and (k+1)-th impostor, so stricter than "facenet".
        Both keep the fitted FAR <= far_target.
    """
    scores, issame = _check_scores(scores, issame)
    if not 0.0 <= far_target <= 1.0:
        raise ValueError(f"`far_target` must be in [0, 1]. Received: far_target={far_target}")
    if rule not in FAR_RULES:
        raise ValueError(f"`rule` must be one of {FAR_RULES}. Received: rule={rule!r}")
    neg = np.sort(scores[~issame])[::-1]  # descending
    if neg.size == 0:
        raise ValueError("FAR is undefined without mismatched pairs (all `issame` are True).")
    if rule == "facenet":
        allowed = math.floor(far_target * neg.size + 1e-9)
        if allowed >= neg.size:
            return float(neg[-1])
        return float(np.nextafter(neg[allowed], np.inf))
    values = np.unique(neg)[::-1]  # descending
    ascending = neg[::-1]
    fars = (neg.size - np.searchsorted(ascending, values, side="left")) / neg.size
    thresholds = np.concatenate([[np.nextafter(values[0], np.inf)], values])
    fars = np.concatenate([[0.0], fars])
    return float(np.interp(far_target, fars, thresholds))


def val_far(scores, issame, threshold):
    """(VAL, FAR) at `threshold`: TA / N_same and FA / N_diff with accept iff score >= it."""
    scores, issame = _check_scores(scores, issame)
    accept = scores >= threshold
    n_same = int(np.sum(issame))
    n_diff = int(np.sum(~issame))
    val = float(np.sum(accept & issame)) / n_same if n_same else float("nan")
    far = float(np.sum(accept & ~issame)) / n_diff if n_diff else float("nan")
    return val, far


def roc_curve(scores, issame):
    """Exact ROC over all pairs.

    Returns:
        (fpr, tpr, thresholds): point 0 is (0, 0) at threshold +inf; point k >= 1 accepts
        every pair with score >= thresholds[k] (distinct scores, descending); the last point
        is (1, 1).
    """
    scores, issame = _check_scores(scores, issame)
    n_pos = int(np.sum(issame))
    n_neg = issame.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "The ROC needs both matched and mismatched pairs. "
            f"Received: {n_pos} matched, {n_neg} mismatched"
        )
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    y = issame[order]
    # The last index of each run of equal scores is where that threshold's point lies.
    last = np.flatnonzero(np.concatenate([s[1:] != s[:-1], [True]]))
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    tpr = np.concatenate([[0.0], tp / n_pos])
    fpr = np.concatenate([[0.0], fp / n_neg])
    thresholds = np.concatenate([[np.inf], s[last]])
    return fpr, tpr, thresholds


def equal_error_rate(scores, issame, roc=None):
    """(EER, threshold) where FAR = FRR, interpolated linearly between ROC points.

    `roc`: the `roc_curve(scores, issame)` result when the caller already has it (it is
    not recomputed; IJB-C has 15.6M pairs).
    """
    fpr, tpr, thresholds = roc_curve(scores, issame) if roc is None else roc
    diff = (1.0 - tpr) - fpr  # +1 at the first point, -1 at the last
    k = int(np.flatnonzero(diff <= 0)[0])
    lam = diff[k - 1] / (diff[k - 1] - diff[k])
    eer = float(fpr[k - 1] + lam * (fpr[k] - fpr[k - 1]))
    if np.isfinite(thresholds[k - 1]):
        threshold = float(thresholds[k - 1] + lam * (thresholds[k] - thresholds[k - 1]))
    else:
        threshold = float(thresholds[k])
    return eer, threshold


TAR_FAR_RULES = ("at_most", "insightface")


def tar_at_far(scores, issame, fars=DEFAULT_TAR_FARS, rule="at_most", roc=None):
    """IJB-style TAR at each target FAR over all pairs.

    Args:
        scores, issame: all pairs.
        fars: target FARs in (0, 1].
        rule: how the operating point of a target f is chosen.
            "at_most" (default): the highest TAR among ROC operating points whose FAR <= f
            (never reports a FAR above the target).
            "insightface": the operating point whose FAR is *nearest* to f on sklearn's
            `roc_curve` (default `drop_intermediate=True`, which keeps only the corners of
            the curve), ties to the higher TAR, as insightface's IJB scripts do
            (`recognition/_evaluation_/ijb/ijb_11.py`: `min(zip(abs(fpr - f), ...))` over
            the flipped curve). Its FAR can be above f; `far_actual` says what it is.
        roc: the `roc_curve(scores, issame)` result when the caller already has it.

    When f < 1/N_impostor no non-trivial operating point can show FAR = f on these pairs:
    under either rule the entry has `tar=nan`, `threshold=nan`, `far_actual=nan`,
    `resolvable=False`.

    Returns:
        list of dicts {"far", "tar", "threshold", "far_actual", "resolvable"}.
    """
    if rule not in TAR_FAR_RULES:
        raise ValueError(f"`rule` must be one of {TAR_FAR_RULES}. Received: rule={rule!r}")
    fpr, tpr, thresholds = roc_curve(scores, issame) if roc is None else roc
    _, issame = _check_scores(scores, issame)
    n_neg = int(np.sum(~issame))
    fp = np.rint(fpr * n_neg).astype(np.int64)
    if rule == "insightface":
        corners = _sklearn_corners(fp, np.rint(tpr * (issame.size - n_neg)).astype(np.int64))
        # Flipped like insightface, so argmin's first hit is the higher TAR of a tie.
        near_fpr, near_tpr = fpr[corners][::-1], tpr[corners][::-1]
        near_thr = thresholds[corners][::-1]
    out = []
    for f in fars:
        if not 0.0 < f <= 1.0:
            raise ValueError(f"Every FAR in `fars` must be in (0, 1]. Received: {f}")
        if f * n_neg < 1.0 - 1e-9:
            out.append(
                {
                    "far": f,
                    "tar": math.nan,
                    "threshold": math.nan,
                    "far_actual": math.nan,
                    "resolvable": False,
                }
            )
            continue
        if rule == "at_most":
            allowed = math.floor(f * n_neg + 1e-9)
            k = int(np.flatnonzero(fp <= allowed)[-1])  # tpr is non-decreasing in k
            tar, threshold, far_actual = tpr[k], thresholds[k], fpr[k]
        else:
            k = int(np.argmin(np.abs(near_fpr - f)))
            tar, threshold, far_actual = near_tpr[k], near_thr[k], near_fpr[k]
        out.append(
            {
                "far": f,
                "tar": float(tar),
                "threshold": float(threshold),
                "far_actual": float(far_actual),
                "resolvable": True,
            }
        )
    return out


def _sklearn_corners(fp, tp):
    """Indices of the ROC points that sklearn's `roc_curve(drop_intermediate=True)` keeps.

    `fp`, `tp`: counts at the points of `roc_curve` (point 0 is the (0, 0) point sklearn
    prepends after dropping). sklearn drops a point whose FP and TP second differences are
    both 0 (the middle of a straight run), except the first and last of its own points.
    """
    if fp.size - 1 <= 2:
        return np.arange(fp.size)
    inner = (np.diff(fp[1:], 2) != 0) | (np.diff(tp[1:], 2) != 0)
    keep = np.concatenate([[True], [True], inner, [True]])
    return np.flatnonzero(keep)


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    """Everything `evaluate` measures; `to_dict()` gives a JSON-ready dict (NaN → None).

    Thresholds are in score units (cosine similarity, or −squared L2 distance). `threshold`
    is the accuracy-maximising threshold over *all* pairs (the one to deploy, e.g. as
    `tfface.export`'s verify threshold); `fold_thresholds` are the per-fold ones chosen on
    the other folds, which the reported accuracy uses.
    """

    metric: str
    num_pairs: int
    num_matched: int
    num_mismatched: int
    num_folds: int
    far_target: float
    far_rule: str
    accuracy_mean: float
    accuracy_std: float
    fold_accuracies: tuple
    fold_thresholds: tuple
    threshold: float
    val_mean: float
    val_std: float
    far_mean: float
    fold_vals: tuple
    fold_fars: tuple
    fold_far_thresholds: tuple
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: tuple
    roc_fpr: np.ndarray = dataclasses.field(repr=False)
    roc_tpr: np.ndarray = dataclasses.field(repr=False)

    def to_dict(self):
        d = {}
        for field in dataclasses.fields(self):
            d[field.name] = _jsonable(getattr(self, field.name))
        return d


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def evaluate_scores(
    scores,
    issame,
    num_folds=10,
    far_target=1e-3,
    tar_fars=DEFAULT_TAR_FARS,
    metric="cosine",
    far_rule="facenet",
):
    """Runs the protocol (see the module docstring) on precomputed similarity scores.

    Args:
        scores: float array [N], higher = more similar.
        issame: bool array [N], True for matched pairs.
        num_folds: number of contiguous folds (LFW: 10).
        far_target: the FAR of the VAL@FAR figure (facenet: 1e-3).
        tar_fars: target FARs of the all-pairs TAR@FAR table.
        metric: recorded in the result only.
        far_rule: how the VAL@FAR threshold is fitted, see `far_threshold`.

    Returns:
        A `VerificationResult`.
    """
    scores, issame = _check_scores(scores, issame)
    if not 0.0 < far_target < 1.0:
        raise ValueError(f"`far_target` must be in (0, 1). Received: far_target={far_target}")
    bounds = fold_bounds(scores.size, num_folds)
    accs, thrs, vals, fars, far_thrs = [], [], [], [], []
    for k, (start, stop) in enumerate(bounds):
        test = np.zeros(scores.size, dtype=bool)
        test[start:stop] = True
        n_same = int(np.sum(issame[test]))
        if n_same == 0 or n_same == stop - start:
            raise ValueError(
                f"Fold {k} (pairs {start}..{stop - 1}) has {n_same} matched and "
                f"{stop - start - n_same} mismatched pairs; every fold needs both for "
                "accuracy and VAL@FAR. Order pairs like LFW's pairs.txt (each set holds "
                "matched then mismatched pairs) or use fewer folds."
            )
        train = ~test
        threshold, _ = best_accuracy_threshold(scores[train], issame[train])
        accs.append(float(np.mean((scores[test] >= threshold) == issame[test])))
        thrs.append(threshold)
        t_far = far_threshold(scores[train], issame[train], far_target, far_rule)
        val, far = val_far(scores[test], issame[test], t_far)
        vals.append(val)
        fars.append(far)
        far_thrs.append(t_far)
    threshold, _ = best_accuracy_threshold(scores, issame)
    fpr, tpr, _ = roc_curve(scores, issame)
    eer, eer_threshold = equal_error_rate(scores, issame)
    return VerificationResult(
        metric=metric,
        num_pairs=int(scores.size),
        num_matched=int(np.sum(issame)),
        num_mismatched=int(np.sum(~issame)),
        num_folds=num_folds,
        far_target=float(far_target),
        far_rule=far_rule,
        accuracy_mean=float(np.mean(accs)),
        accuracy_std=float(np.std(accs)),
        fold_accuracies=tuple(accs),
        fold_thresholds=tuple(thrs),
        threshold=threshold,
        val_mean=float(np.mean(vals)),
        val_std=float(np.std(vals)),
        far_mean=float(np.mean(fars)),
        fold_vals=tuple(vals),
        fold_fars=tuple(fars),
        fold_far_thresholds=tuple(far_thrs),
        auc=float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)),
        eer=eer,
        eer_threshold=eer_threshold,
        tar_at_far=tuple(tar_at_far(scores, issame, tar_fars)),
        roc_fpr=fpr,
        roc_tpr=tpr,
    )


def evaluate(
    embeddings1,
    embeddings2,
    issame,
    num_folds=10,
    far_target=1e-3,
    metric="cosine",
    tar_fars=DEFAULT_TAR_FARS,
    far_rule="facenet",
):
    """LFW-protocol verification of row-aligned embedding pairs.

    Args:
        embeddings1, embeddings2: arrays [N, D]; row i of each forms pair i. They are
            L2-normalised here, so unnormalised model outputs are fine.
        issame: bool array [N].
        num_folds: contiguous folds in the given order (LFW: 10, 600 pairs each).
        far_target: FAR of the facenet VAL@FAR figure.
        metric: "cosine" or "squared_l2" (see the module docstring).
        tar_fars: target FARs of the all-pairs TAR@FAR table.
        far_rule: "facenet" or "interpolate", see `far_threshold`.

    Returns:
        A `VerificationResult`.

    Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> e1 = rng.normal(size=(600, 8)); issame = np.arange(600) % 60 < 30
    >>> e2 = np.where(issame[:, None], e1 + 0.1 * rng.normal(size=(600, 8)),
    ...               rng.normal(size=(600, 8)))
    >>> result = evaluate(e1, e2, issame)
    >>> print(f"{result.accuracy_mean:.4f} {result.auc:.3f}")
    0.9983 1.000
    """
    scores = pair_scores(embeddings1, embeddings2, metric)
    return evaluate_scores(scores, issame, num_folds, far_target, tar_fars, metric, far_rule)


def _format_far(far):
    mantissa, exponent = f"{far:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_result(result):
    """One-line summary, e.g. "accuracy 0.9312 ± 0.0120, VAL@FAR=1e-3 0.512 ± 0.040
    (FAR 0.0010), AUC 0.981, EER 0.071"."""
    return (
        f"accuracy {result.accuracy_mean:.4f} ± {result.accuracy_std:.4f}, "
        f"VAL@FAR={_format_far(result.far_target)} {result.val_mean:.3f} ± "
        f"{result.val_std:.3f} (FAR {result.far_mean:.4f}), AUC {result.auc:.3f}, "
        f"EER {result.eer:.3f}"
    )


def write_report(result, json_path, roc_png_path=None, title=None):
    """Writes `result.to_dict()` (plus the one-line summary) as JSON and a ROC curve PNG.

    The plot has TAR against FAR on a log FAR axis (from 1/N_impostor to 1), the EER point
    and the VAL@FAR point (mean fold FAR, mean VAL; drawn at the axis floor when the mean
    FAR is 0).
    """
    for path in (json_path, roc_png_path):
        if path and os.path.dirname(os.fspath(path)):
            os.makedirs(os.path.dirname(os.fspath(path)), exist_ok=True)
    payload = {"summary": format_result(result), **result.to_dict()}
    with open(json_path, "w") as f:
        json.dump(payload, f, indent=1, allow_nan=False)
        f.write("\n")
    if roc_png_path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    floor = 1.0 / result.num_mismatched
    fpr = np.maximum(result.roc_fpr, floor)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    try:
        ax.step(fpr, result.roc_tpr, where="post", label=f"ROC (AUC {result.auc:.4f})")
        ax.plot(
            [max(result.eer, floor)],
            [1.0 - result.eer],
            "o",
            label=f"EER {result.eer:.4f}",
        )
        ax.plot(
            [max(result.far_mean, floor)],
            [result.val_mean],
            "s",
            label=(
                f"VAL@FAR={_format_far(result.far_target)}: {result.val_mean:.3f} "
                f"(fold FAR mean {result.far_mean:.4f})"
            ),
        )
        ax.set_xscale("log")
        ax.set_xlim(floor, 1.0)
        ax.set_ylim(0.0, 1.01)
        ax.set_xlabel(f"false accept rate (log; floor 1/{result.num_mismatched} impostors)")
        ax.set_ylabel("true accept rate")
        ax.set_title(
            title
            or f"ROC over {result.num_pairs} pairs ({result.num_matched} matched), "
            f"{result.metric}\naccuracy {result.accuracy_mean:.4f} ± {result.accuracy_std:.4f}",
            fontsize=10,
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(roc_png_path)
    finally:
        plt.close(fig)
