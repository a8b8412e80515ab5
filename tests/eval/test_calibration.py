"""`tfface.eval.calibration` against slow references with explicit loops."""

import numpy as np
import pytest

from tfface.eval import calibration


def _unit(rng, n, dim=8):
    x = rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _people(rng, n_people=6, per_person=(1, 4)):
    centres = _unit(rng, n_people)
    embeddings, labels = [], []
    for i, c in enumerate(centres):
        for _ in range(int(rng.integers(per_person[0], per_person[1] + 1))):
            embeddings.append(c + 0.4 * _unit(rng, 1)[0])
            labels.append(f"p{i}")
    return np.array(embeddings, np.float32), np.array(labels)


def _loo_reference(x, labels, by):
    """Each embedding of a person with >= 2 against every identity, itself left out."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    true, rank1 = [], []
    for i in range(len(x)):
        if sum(1 for lab in labels if lab == labels[i]) < 2:
            continue
        scores = {}
        for name in sorted(set(labels.tolist())):
            sims = [float(x[i] @ x[j]) for j in range(len(x)) if labels[j] == name and j != i]
            scores[name] = max(sims) if by == "max" else sum(sims) / len(sims)
        mine = scores[labels[i]]
        true.append(mine)
        rank1.append(all(s < mine for n, s in scores.items() if n != labels[i]))
    return np.array(true), np.array(rank1)


@pytest.mark.parametrize("by", ["max", "mean"])
def test_leave_one_out_matches_the_loops(by):
    rng = np.random.default_rng(0)
    x, labels = _people(rng)
    true, rank1, rows = calibration.leave_one_out_scores(x, labels, by=by, chunk=3)
    want_true, want_rank1 = _loo_reference(x, labels, by)
    order = np.argsort(rows)  # the reference walks rows in input order
    np.testing.assert_allclose(true[order], want_true, atol=1e-5)
    np.testing.assert_array_equal(rank1[order], want_rank1)


def test_open_set_point_counts_strangers_at_or_above_the_threshold():
    rng = np.random.default_rng(1)
    x, labels = _people(rng)
    strangers = _unit(rng, 200)
    point = calibration.open_set_operating_point(x, labels, strangers, fpir=0.05)
    # Reference: each stranger's best cosine over every enrolled embedding, with loops.
    xs = x / np.linalg.norm(x, axis=1, keepdims=True)
    top = np.array([max(float(s @ e) for e in xs) for s in strangers])
    assert point.false_accepts == int((top >= point.threshold).sum()) <= 10  # floor(0.05·200)
    assert point.false_accepts == 10  # distinct scores: exactly the allowed number
    assert point.impostors == 200 and point.false_rate == 0.05
    true, rank1 = _loo_reference(x, labels, "max")
    assert point.genuines == len(true)
    assert point.true_accepts == int((rank1 & (true >= point.threshold)).sum())


def test_far_point_and_too_few_impostors():
    rng = np.random.default_rng(2)
    x, labels = _people(rng, n_people=20, per_person=(2, 3))
    scores, issame = calibration.all_pairs(x, labels)
    n = len(labels)
    assert len(scores) == n * (n - 1) // 2
    assert int(issame.sum()) == sum(
        1 for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]
    )
    point = calibration.far_operating_point(scores, issame, far=0.01)
    neg = scores[~issame]
    assert point.false_accepts == int((neg >= point.threshold).sum())
    assert point.false_accepts <= np.floor(0.01 * len(neg))
    assert point.true_accepts == int((scores[issame] >= point.threshold).sum())
    assert calibration.needed_impostors(1e-4) == 10_000
    with pytest.raises(ValueError, match=r"FAR 0\.0001 needs at least 10000 .* have \d+"):
        calibration.far_operating_point(scores, issame, far=1e-4)
    with pytest.raises(ValueError, match="FPIR 0.001 needs at least 1000"):
        calibration.open_set_operating_point(x, labels, _unit(rng, 999), fpir=1e-3)
