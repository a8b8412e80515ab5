"""Tests for tfface.eval.identification against a NumPy reference written with loops."""

import json

import numpy as np
import pytest

from tfface.eval import identification as ident


def _labelled(rng, identities=30, per=(1, 6), dim=16, noise=1.2):
    labels = np.repeat(np.arange(identities), rng.integers(per[0], per[1] + 1, identities))
    centers = rng.normal(size=(identities, dim))
    emb = centers[labels] + noise * rng.normal(size=(len(labels), dim))
    return emb.astype(np.float32), labels


def _reference(emb, labels, split, ranks, fpirs, by):
    """Explicit loops over probes and gallery identities, straight from the definitions."""
    unit = [e / np.linalg.norm(e) for e in emb.astype(np.float64)]
    gallery = {}
    for i in split.gallery:
        gallery.setdefault(labels[i], []).append(unit[i])

    def score(p, g):
        sims = [float(np.dot(unit[p], v)) for v in gallery[g]]
        return max(sims) if by == "max" else sum(sims) / len(sims)

    ranks_of, true_scores = [], []
    for p in split.mated:
        true = score(p, labels[p])
        others = sum(1 for g in gallery if g != labels[p] and score(p, g) >= true)
        ranks_of.append(1 + others)
        true_scores.append(true)
    nonmated_top = [max(score(p, g) for g in gallery) for p in split.nonmated]
    cmc = {r: sum(1 for k in ranks_of if k <= r) / len(ranks_of) for r in ranks}
    tpir, fpir = {}, {}
    desc = sorted(nonmated_top, reverse=True)
    for f in fpirs:
        allowed = int(np.floor(f * len(desc)))
        # The smallest threshold accepting at most `allowed` non-mated probes.
        t = np.nextafter(desc[allowed], np.inf)
        fpir[f] = sum(1 for s in nonmated_top if s >= t) / len(nonmated_top)
        hits = 0
        for k, s in zip(ranks_of, true_scores, strict=True):
            if k == 1 and s >= t:
                hits += 1
        tpir[f] = hits / len(ranks_of)
    return cmc, tpir, fpir


@pytest.mark.parametrize("by, per_gallery", [("max", 1), ("max", 2), ("mean", 2)])
def test_matches_loop_reference(by, per_gallery):
    rng = np.random.default_rng(7)
    emb, labels = _labelled(rng)
    ranks, fpirs = (1, 2, 5), (0.3, 0.1, 1e-2)
    r = ident.evaluate_identification(
        emb, labels, ranks=ranks, fpirs=fpirs, gallery_per_identity=per_gallery, by=by, seed=3
    )
    split = ident.split_open_set(labels, gallery_per_identity=per_gallery, seed=3)
    cmc, tpir, fpir = _reference(emb, labels, split, ranks, fpirs, by)
    for k in ranks:
        assert r.cmc[k] == pytest.approx(cmc[k], abs=1e-9)
    for f in fpirs:
        assert r.tpir[f] == pytest.approx(tpir[f], abs=1e-9)
        assert r.achieved_fpir[f] == pytest.approx(fpir[f], abs=1e-9)
        assert r.achieved_fpir[f] <= f
    assert r.num_mated == len(split.mated) and r.num_nonmated == len(split.nonmated)
    assert 0 < r.cmc[1] < 1  # the fixture is neither trivial nor hopeless


def test_split_is_disjoint_and_open_set():
    labels = np.repeat(np.arange(40), np.arange(40) % 5 + 1)
    s = ident.split_open_set(labels, gallery_per_identity=2, enrolled_fraction=0.5, seed=0)
    all_idx = np.concatenate([s.gallery, s.mated, s.nonmated])
    np.testing.assert_array_equal(np.sort(all_idx), np.arange(len(labels)))
    enrolled = set(labels[s.gallery])
    assert set(labels[s.mated]) <= enrolled
    assert not set(labels[s.nonmated]) & enrolled  # distractors are never enrolled
    assert all(np.sum(labels[s.gallery] == g) == 2 for g in enrolled)
    again = ident.split_open_set(labels, gallery_per_identity=2, enrolled_fraction=0.5, seed=0)
    np.testing.assert_array_equal(again.gallery, s.gallery)


def test_perfect_and_hopeless_embeddings():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(50), 4)
    centers = rng.normal(size=(50, 32))
    r = ident.evaluate_identification(centers[labels], labels, fpirs=(0.1,))
    assert r.cmc[1] == 1.0 and r.tpir[0.1] == 1.0
    # Pure noise: rank-1 near chance (1/25), TPIR near zero at a low FPIR.
    noise = rng.normal(size=(len(labels), 32))
    r = ident.evaluate_identification(noise, labels, fpirs=(0.1,))
    assert r.cmc[1] < 0.25 and r.tpir[0.1] < 0.25


def test_calibrate_threshold():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    t, fpir = ident.calibrate_threshold(scores, 0.2)  # two of ten may pass
    assert 0.7 < t <= 0.7 + 1e-12 and fpir == pytest.approx(0.2)
    t, fpir = ident.calibrate_threshold(scores, 0.01)  # below 1/n: nothing may pass
    assert t > 0.9 and fpir == 0.0
    with pytest.raises(ValueError, match="target_fpir"):
        ident.calibrate_threshold(scores, 1.5)


def test_bad_input_and_report(tmp_path):
    with pytest.raises(ValueError, match="No identity has more than"):
        ident.split_open_set(np.arange(10))
    with pytest.raises(ValueError, match="differ in length"):
        ident.evaluate_identification(np.ones((3, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="by must be"):
        ident.identification_scores(np.ones((1, 2)), np.ones((1, 2)), [0], by="median")
    rng = np.random.default_rng(1)
    emb, labels = _labelled(rng)
    r = ident.evaluate_identification(emb, labels)
    line = ident.format_identification(r, "trained")
    assert line.startswith("trained: rank-1 ") and "TPIR@FPIR=0.01" in line
    ident.write_identification_report(str(tmp_path / "r.json"), {"trained": r})
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["trained"]["cmc"]["1"] == r.cmc[1]
