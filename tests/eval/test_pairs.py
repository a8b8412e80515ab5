"""Tests for tfface.eval.pairs: LFW-style held-out pairs and the raw-pixel baseline."""

import numpy as np
import pytest

from tfface.eval import pairs as pairs_lib


def _check_layout(p, labels, num_folds, per_fold):
    assert len(p) == num_folds * 2 * per_fold
    np.testing.assert_array_equal(p.issame, np.tile(np.repeat([True, False], per_fold), num_folds))
    np.testing.assert_array_equal(p.issame, labels[p.first] == labels[p.second])
    assert np.all(p.first < p.second)
    keys = set(zip(p.first.tolist(), p.second.tolist(), strict=True))
    assert len(keys) == len(p), "pairs must be distinct"
    fold_labels = []
    for k in range(num_folds):
        sl = slice(2 * per_fold * k, 2 * per_fold * (k + 1))
        fold_labels.append(set(labels[p.first[sl]]) | set(labels[p.second[sl]]))
    for a in range(num_folds):
        for b in range(a + 1, num_folds):
            assert not fold_labels[a] & fold_labels[b], f"folds {a} and {b} share identities"


@pytest.mark.parametrize("enumerate_limit", [None, 0])
def test_lfw_layout_and_disjoint_identities(monkeypatch, enumerate_limit):
    if enumerate_limit is not None:  # exercise the rejection-sampling path too
        monkeypatch.setattr(pairs_lib, "_ENUMERATE_LIMIT", enumerate_limit)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(60), rng.integers(1, 12, size=60))
    rng.shuffle(labels)
    p = pairs_lib.make_lfw_style_pairs(labels, num_folds=10, pairs_per_fold=25, seed=3)
    _check_layout(p, labels, 10, 25)
    assert p.num_folds == 10


def test_deterministic_per_seed():
    labels = np.repeat(np.arange(40), 6)
    a = pairs_lib.make_lfw_style_pairs(labels, pairs_per_fold=20, seed=1)
    b = pairs_lib.make_lfw_style_pairs(labels, pairs_per_fold=20, seed=1)
    c = pairs_lib.make_lfw_style_pairs(labels, pairs_per_fold=20, seed=2)
    np.testing.assert_array_equal(a.first, b.first)
    np.testing.assert_array_equal(a.second, b.second)
    assert not np.array_equal(a.first, c.first)


def test_uses_all_pairs_when_exactly_enough():
    # 20 identities × 3 images: each fold gets 2 identities → 6 matched, 9 mismatched pairs.
    labels = np.repeat(np.arange(20), 3)
    p = pairs_lib.make_lfw_style_pairs(labels, num_folds=10, pairs_per_fold=6, seed=0)
    _check_layout(p, labels, 10, 6)
    with pytest.raises(ValueError, match="only 6 distinct matched .* pairs_per_fold=7"):
        pairs_lib.make_lfw_style_pairs(labels, num_folds=10, pairs_per_fold=7)


def test_one_big_identity_still_leaves_two_per_fold():
    # identity 0 has 40 images, 19 others have 3: every fold still gets two identities
    labels = np.concatenate([np.zeros(40, np.int64), np.repeat(np.arange(1, 20), 3)])
    p = pairs_lib.make_lfw_style_pairs(labels, num_folds=10, pairs_per_fold=3, seed=0)
    _check_layout(p, labels, 10, 3)


def test_too_few_identities_names_how_many():
    labels = np.repeat(np.arange(15), 4)
    with pytest.raises(ValueError, match="at least 20 identities, 10 of them .* Received: 15"):
        pairs_lib.make_lfw_style_pairs(labels, num_folds=10, pairs_per_fold=5)
    with pytest.raises(ValueError, match="1-D integer"):
        pairs_lib.make_lfw_style_pairs(np.zeros(10, dtype=np.float32))


def test_evaluate_embeddings_on_pairs():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(50), 8)
    centers = rng.normal(size=(50, 32))
    emb = centers[labels] + 0.05 * rng.normal(size=(labels.size, 32))
    p = pairs_lib.make_lfw_style_pairs(labels, pairs_per_fold=30, seed=0)
    result = pairs_lib.evaluate_embeddings_on_pairs(emb, p)
    assert result.accuracy_mean == 1.0 and result.num_folds == 10 and result.num_pairs == 600
    noise = pairs_lib.evaluate_embeddings_on_pairs(rng.normal(size=emb.shape), p)
    assert abs(noise.accuracy_mean - 0.5) < 0.1
    with pytest.raises(ValueError, match="largest pair index"):
        pairs_lib.evaluate_embeddings_on_pairs(emb[:10], p)
    with pytest.raises(ValueError, match="Received a tuple without"):
        pairs_lib.evaluate_embeddings_on_pairs(emb, (p.first, p.second, p.issame))


def test_evaluate_on_pairs_matches_gathered_evaluate(monkeypatch):
    """Chunked gathering (tiny chunks here) gives exactly what `evaluate` gives."""
    from tfface.eval import verification

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(40), 5)
    emb = rng.normal(size=(labels.size, 24)) + 2 * rng.normal(size=(40, 24))[labels]
    p = pairs_lib.make_lfw_style_pairs(labels, pairs_per_fold=10, seed=0)
    monkeypatch.setattr(verification, "_CHUNK_VALUES", 24 * 7)  # 7 rows per chunk
    for metric in verification.METRICS:
        chunked = pairs_lib.evaluate_embeddings_on_pairs(emb, p, metric=metric)
        whole = verification.evaluate(emb[p.first], emb[p.second], p.issame, metric=metric)
        assert chunked.to_dict() == whole.to_dict()


def test_raw_pixel_embeddings_is_pixel_correlation():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 6, 6, 3), dtype=np.uint8)
    e = pairs_lib.raw_pixel_embeddings(images)
    assert e.shape == (5, 108) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-6)
    flat = images.reshape(5, -1).astype(np.float64)
    np.testing.assert_allclose(e @ e.T, np.corrcoef(flat), atol=1e-6)
    # brightness offset and contrast gain do not change the embedding
    e2 = pairs_lib.raw_pixel_embeddings(images.astype(np.float64) * 0.5 + 40)
    np.testing.assert_allclose(e2, e, atol=1e-6)
    flat_image = np.full((1, 6, 6, 3), 7, dtype=np.uint8)
    with pytest.raises(ValueError, match=r"Images \[1\] are constant"):
        pairs_lib.raw_pixel_embeddings(np.concatenate([images[:1], flat_image]))
