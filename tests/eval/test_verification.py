"""Tests for tfface.eval.verification against loop references and hand-computed goldens."""

import json
import math

import numpy as np
import pytest

from tfface.eval import verification as v

# ---------------------------------------------------------------------------------------
# Slow references: explicit loops, no vectorised code shared with the module under test.
# ---------------------------------------------------------------------------------------


def _ref_accuracy(scores, issame, threshold):
    correct = 0
    for s, same in zip(scores, issame, strict=True):
        correct += int((s >= threshold) == bool(same))
    return correct / len(scores)


def _ref_best_threshold(scores, issame):
    """Brute force: every midpoint of consecutive distinct scores, plus both ends."""
    u = sorted(set(float(s) for s in scores))
    candidates = [u[0] - 1.0]
    for a, b in zip(u[:-1], u[1:], strict=True):
        candidates.append(a + (b - a) / 2)
    candidates.append(u[-1] + 1.0)
    best_t, best_acc = None, -1.0
    for t in candidates:  # ascending, `>=` keeps the last (highest) of equal accuracies
        acc = _ref_accuracy(scores, issame, t)
        if acc >= best_acc:
            best_t, best_acc = t, acc
    return best_t, best_acc


def _ref_far_threshold(scores, issame, target, rule):
    neg = [float(s) for s, same in zip(scores, issame, strict=True) if not same]
    if rule == "facenet":  # the lowest candidate threshold whose FAR <= target
        candidates = [min(neg)] + [float(np.nextafter(n, np.inf)) for n in neg]
        for t in sorted(candidates):
            if sum(1 for n in neg if n >= t) / len(neg) <= target + 1e-12:
                return t
    points = [(0.0, float(np.nextafter(max(neg), np.inf)))]
    for t in sorted(set(neg), reverse=True):
        points.append((sum(1 for n in neg if n >= t) / len(neg), t))
    for (f0, t0), (f1, t1) in zip(points[:-1], points[1:], strict=True):
        if f0 <= target <= f1:
            return t0 + (target - f0) / (f1 - f0) * (t1 - t0)
    return points[-1][1]


def _ref_protocol(scores, issame, num_folds, far_target, rule):
    n = len(scores)
    size = n // num_folds
    accs, thrs, vals, fars = [], [], [], []
    for k in range(num_folds):
        test = [i for i in range(n) if i // size == k]
        train = [i for i in range(n) if i // size != k]
        t, _ = _ref_best_threshold([scores[i] for i in train], [issame[i] for i in train])
        accs.append(_ref_accuracy([scores[i] for i in test], [issame[i] for i in test], t))
        thrs.append(t)
        tf = _ref_far_threshold(
            [scores[i] for i in train], [issame[i] for i in train], far_target, rule
        )
        ta = sum(1 for i in test if scores[i] >= tf and issame[i])
        fa = sum(1 for i in test if scores[i] >= tf and not issame[i])
        vals.append(ta / sum(1 for i in test if issame[i]))
        fars.append(fa / sum(1 for i in test if not issame[i]))
    return accs, thrs, vals, fars


def _ref_auc(scores, issame):
    """Mann-Whitney: P(genuine score > impostor score) + ½ P(tie)."""
    pos = [s for s, same in zip(scores, issame, strict=True) if same]
    neg = [s for s, same in zip(scores, issame, strict=True) if not same]
    total = 0.0
    for p in pos:
        for q in neg:
            total += 1.0 if p > q else 0.5 if p == q else 0.0
    return total / (len(pos) * len(neg))


def _ref_eer(scores, issame):
    pos = [s for s, same in zip(scores, issame, strict=True) if same]
    neg = [s for s, same in zip(scores, issame, strict=True) if not same]
    points = [(0.0, 1.0)]  # (FAR, FRR) accepting nothing
    for t in sorted(set(scores), reverse=True):
        far = sum(1 for q in neg if q >= t) / len(neg)
        frr = sum(1 for p in pos if p < t) / len(pos)
        points.append((far, frr))
    for (a0, r0), (a1, r1) in zip(points[:-1], points[1:], strict=True):
        if r1 - a1 <= 0:
            lam = (r0 - a0) / ((r0 - a0) - (r1 - a1))
            return a0 + lam * (a1 - a0)
    raise AssertionError("unreachable")


def _ref_tar_at_far(scores, issame, far):
    pos = [s for s, same in zip(scores, issame, strict=True) if same]
    neg = [s for s, same in zip(scores, issame, strict=True) if not same]
    if far < 1 / len(neg):
        return math.nan
    best = 0.0
    for t in sorted(set(scores), reverse=True):
        if sum(1 for q in neg if q >= t) / len(neg) <= far + 1e-12:
            best = max(best, sum(1 for p in pos if p >= t) / len(pos))
    return best


def _lfw_like_scores(seed, num_folds=10, per_fold=40, separation=1.0, quantize=None):
    rng = np.random.default_rng(seed)
    issame = np.tile(np.repeat([True, False], per_fold // 2), num_folds)
    scores = rng.normal(size=issame.size) + separation * issame
    if quantize:
        scores = np.round(scores * quantize) / quantize  # forces ties
    return scores, issame


# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed,quantize,rule",
    [(0, None, "facenet"), (1, None, "interpolate"), (2, 4, "facenet"), (3, 2, "interpolate")],
)
def test_protocol_matches_loop_reference(seed, quantize, rule):
    scores, issame = _lfw_like_scores(seed, per_fold=30, quantize=quantize)
    result = v.evaluate_scores(scores, issame, num_folds=10, far_target=0.05, far_rule=rule)
    accs, thrs, vals, fars = _ref_protocol(scores, issame, 10, 0.05, rule)
    np.testing.assert_allclose(result.fold_accuracies, accs)
    np.testing.assert_allclose(result.fold_thresholds, thrs)
    np.testing.assert_allclose(result.fold_vals, vals)
    np.testing.assert_allclose(result.fold_fars, fars)
    assert result.accuracy_mean == pytest.approx(np.mean(accs))
    assert result.accuracy_std == pytest.approx(np.std(accs))
    assert result.auc == pytest.approx(_ref_auc(scores, issame), abs=1e-12)
    assert result.eer == pytest.approx(_ref_eer(scores, issame), abs=1e-12)
    for entry in v.tar_at_far(scores, issame, (1e-3, 1 / 200, 0.01, 0.1, 0.5)):
        ref = _ref_tar_at_far(scores, issame, entry["far"])
        if math.isnan(ref):
            assert math.isnan(entry["tar"]) and not entry["resolvable"]
        else:
            assert entry["tar"] == pytest.approx(ref) and entry["resolvable"]


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=37), 1)
    issame = rng.random(37) < 0.4
    t, acc = v.best_accuracy_threshold(scores, issame)
    ref_t, ref_acc = _ref_best_threshold(scores, issame)
    assert acc == pytest.approx(ref_acc)
    assert t == pytest.approx(ref_t)


def test_hand_computed_golden():
    """Two folds of four pairs.

    fold A (pairs 0-3): matched 0.9, 0.65; mismatched 0.7, 0.1
    fold B (pairs 4-7): matched 0.85, 0.3; mismatched 0.4, 0.2

    Accuracy. Test A, train B: B's distinct scores .2n .3p .4n .85p; cuts (accept >= cut):
    accept-all 2/4, .3 → 3/4, .4 → 2/4, .85 → 3/4, reject-all 2/4. The tie goes to the
    higher cut .85, applied as the midpoint (.4 + .85)/2 = .625. On A: .9 ✓ .65 ✓ .7
    (accepted impostor) ✗ .1 ✓ → 0.75.
    Test B, train A: A's scores .1n .65p .7n .9p: cuts .65 → 3/4 and .9 → 3/4; the tie goes
    to .9, applied as (.7 + .9)/2 = .8. On B: .85 ✓ .3 ✗ .4 ✓ .2 ✓ → 0.75.
    Mean 0.75, std 0.

    VAL@FAR with far_target = 0.5, rule "interpolate". Train B impostors .4, .2: FAR(.4)
    = 1/2, so the threshold is .4; on A accepted: matched .9 .65 (VAL 1), impostor .7
    (FAR 1/2). Train A impostors .7, .1: FAR(.7) = 1/2 → threshold .7; on B: matched .85
    (VAL 1/2), no impostor (FAR 0). VAL 0.75 ± 0.25, FAR mean 0.25.
    Rule "facenet": floor(0.5 · 2) = 1 impostor may pass, so the threshold sits just above
    the 2nd-highest training impostor: .2⁺ (train B) and .1⁺ (train A). On A: VAL 1, FAR
    1/2 (.7 passes, .1 not); on B: VAL 1, FAR 1 (.4 and .2 pass). VAL 1 ± 0, FAR 0.75.

    All pairs. Genuine .9 .65 .85 .3 vs impostors .7 .1 .4 .2: genuine-wins 4 + 3 + 4 + 2
    = 13 of 16 → AUC 0.8125. Descending: .9p .85p .7n .65p .4n .3p ...; ROC (FAR, TAR):
    (0,0) (0,.25) (0,.5) (.25,.5) (.25,.75) ...; at threshold .65 FAR = FRR = .25 → EER
    .25. TAR@FAR=.25 (one impostor allowed) is .75 at threshold .65; FAR=.5 → TAR 1 at .3;
    FAR=.1 < 1/4 is not resolvable.

    Deployment threshold over all 8 pairs (.1n .2n .3p .4n .65p .7n .85p .9p): cuts .3,
    .65 and .85 each get 6/8 right; the highest, .85, is applied as (.7 + .85)/2 = .775.
    """
    scores = np.array([0.9, 0.65, 0.7, 0.1, 0.85, 0.3, 0.4, 0.2])
    issame = np.array([1, 1, 0, 0, 1, 1, 0, 0], dtype=bool)
    r = v.evaluate_scores(
        scores, issame, 2, far_target=0.5, tar_fars=(0.1, 0.25, 0.5), far_rule="interpolate"
    )
    np.testing.assert_allclose(r.fold_thresholds, [0.625, 0.8])
    np.testing.assert_allclose(r.fold_accuracies, [0.75, 0.75])
    assert r.threshold == pytest.approx(0.775)
    assert (r.accuracy_mean, r.accuracy_std) == pytest.approx((0.75, 0.0))
    np.testing.assert_allclose(r.fold_far_thresholds, [0.4, 0.7])
    np.testing.assert_allclose(r.fold_vals, [1.0, 0.5])
    np.testing.assert_allclose(r.fold_fars, [0.5, 0.0])
    assert (r.val_mean, r.val_std, r.far_mean) == pytest.approx((0.75, 0.25, 0.25))
    f = v.evaluate_scores(scores, issame, 2, far_target=0.5, far_rule="facenet")
    np.testing.assert_allclose(f.fold_far_thresholds, [0.2, 0.1])
    assert f.fold_far_thresholds[0] > 0.2 and f.fold_far_thresholds[1] > 0.1
    np.testing.assert_allclose(f.fold_vals, [1.0, 1.0])
    np.testing.assert_allclose(f.fold_fars, [0.5, 1.0])
    assert r.auc == pytest.approx(0.8125)
    assert r.eer == pytest.approx(0.25)
    assert r.eer_threshold == pytest.approx(0.65)
    unresolved, quarter, half = r.tar_at_far
    assert not unresolved["resolvable"] and math.isnan(unresolved["tar"])
    assert (quarter["tar"], quarter["threshold"]) == pytest.approx((0.75, 0.65))
    assert (half["tar"], half["threshold"]) == pytest.approx((1.0, 0.3))


def test_perfectly_separable():
    rng = np.random.default_rng(0)
    issame = np.tile(np.repeat([True, False], 300), 10)
    scores = np.where(issame, rng.uniform(0.8, 0.9, issame.size), rng.uniform(0.1, 0.2, 6000))
    r = v.evaluate_scores(scores, issame)
    assert r.accuracy_mean == 1.0 and r.accuracy_std == 0.0
    assert r.auc == 1.0
    assert r.eer == 0.0
    assert r.val_mean == 1.0
    for entry in r.tar_at_far:
        assert entry["resolvable"] == (entry["far"] >= 1 / 3000)
        if entry["resolvable"]:
            assert entry["tar"] == 1.0


def test_random_scores_are_chance():
    rng = np.random.default_rng(1)
    issame = np.tile(np.repeat([True, False], 300), 10)
    r = v.evaluate_scores(rng.normal(size=6000), issame)
    assert abs(r.accuracy_mean - 0.5) < 0.03
    assert abs(r.auc - 0.5) < 0.03
    assert abs(r.eer - 0.5) < 0.03
    assert r.val_mean < 0.02


@pytest.mark.parametrize("rule", v.FAR_RULES)
def test_training_far_never_exceeds_target(rule):
    scores, issame = _lfw_like_scores(4, per_fold=600)
    for target in (0.0, 1e-4, 1e-3, 2e-3, 1e-2, 0.1):  # 1e-4 < 1/3000 impostors
        t = v.far_threshold(scores, issame, target, rule)
        _, far = v.val_far(scores, issame, t)
        assert far <= target + 1e-12
        # and one step lower would exceed it: the threshold is the loosest such cut
        lower = np.max(scores[~issame & (scores < t)])
        _, far_lower = v.val_far(scores, issame, lower)
        assert far_lower > target


def test_cosine_and_squared_l2_agree_on_ranking():
    rng = np.random.default_rng(5)
    e1 = rng.normal(size=(400, 16))
    issame = np.tile(np.repeat([True, False], 20), 10)
    e2 = np.where(issame[:, None], e1 + rng.normal(size=(400, 16)), rng.normal(size=(400, 16)))
    cos = v.evaluate(e1, e2, issame, metric="cosine")
    sq = v.evaluate(e1, e2, issame, metric="squared_l2")
    scores = v.pair_scores(e1, e2, "cosine")
    np.testing.assert_allclose(v.pair_scores(e1, e2, "squared_l2"), 2 * scores - 2, atol=1e-12)
    np.testing.assert_allclose(cos.fold_accuracies, sq.fold_accuracies)
    assert cos.auc == pytest.approx(sq.auc) and cos.eer == pytest.approx(sq.eer)
    # Unnormalised input gives the same result: evaluate normalises.
    assert v.evaluate(3 * e1, e2, issame).fold_accuracies == cos.fold_accuracies


def test_fold_bounds_are_file_order():
    assert v.fold_bounds(6000, 10) == [(600 * k, 600 * (k + 1)) for k in range(10)]
    assert v.fold_bounds(23, 4) == [(0, 6), (6, 12), (12, 18), (18, 23)]
    with pytest.raises(ValueError, match="num_folds"):
        v.fold_bounds(10, 1)


def test_bad_inputs_raise_clear_errors():
    issame = np.tile([True, False], 10)
    with pytest.raises(ValueError, match="metric"):
        v.evaluate(np.ones((20, 2)), np.ones((20, 2)), issame, metric="l1")
    with pytest.raises(ValueError, match="all-zero rows \\[3\\]"):
        e = np.ones((20, 2))
        e[3] = 0
        v.evaluate(e, np.ones((20, 2)), issame)
    with pytest.raises(ValueError, match="Fold 0 .* 0 matched"):
        v.evaluate_scores(np.arange(20.0), np.arange(20) >= 2, num_folds=10)
    with pytest.raises(ValueError, match="issame"):
        v.evaluate_scores(np.arange(20.0), issame[:-1])
    with pytest.raises(ValueError, match="far_target"):
        v.evaluate_scores(np.arange(20.0), issame, num_folds=2, far_target=0.0)


def test_write_report_and_format(tmp_path):
    scores, issame = _lfw_like_scores(6, per_fold=60, separation=2.0)
    r = v.evaluate_scores(scores, issame)
    line = v.format_result(r)
    assert line.startswith(f"accuracy {r.accuracy_mean:.4f} ± {r.accuracy_std:.4f}, VAL@FAR=1e-3 ")
    assert f"AUC {r.auc:.3f}, EER {r.eer:.3f}" in line
    v.write_report(r, tmp_path / "out" / "r.json", tmp_path / "out" / "roc.png")
    data = json.loads((tmp_path / "out" / "r.json").read_text())
    assert data["summary"] == line
    assert data["fold_accuracies"] == pytest.approx(list(r.fold_accuracies))
    assert data["tar_at_far"][0]["tar"] is None  # NaN is written as null
    assert data["tar_at_far"][0]["resolvable"] is False
    assert len(data["roc_fpr"]) == len(r.roc_fpr)
    assert (tmp_path / "out" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("seed,noise", [(1, 2.0), (3, 3.0)])
def test_close_to_facenet_grid_protocol(seed, noise):
    """facenet's grid search differs from the exact search only by its 0.01/0.001 grids."""
    from tests.eval import facenet_reference

    e1, e2, issame = facenet_reference.simulated_lfw(seed, noise)
    acc, _, val, _, _ = facenet_reference.facenet_evaluate(e1, e2, issame)
    r = v.evaluate(e1, e2, issame, metric="squared_l2")
    assert abs(r.accuracy_mean - acc) <= 0.002
    assert abs(r.val_mean - val) <= 0.003
    # the "interpolate" rule is stricter: never a higher VAL
    assert v.evaluate(e1, e2, issame, far_rule="interpolate").val_mean <= r.val_mean
