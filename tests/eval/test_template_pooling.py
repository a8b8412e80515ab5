"""Tests for tfface.eval.template_pooling against a slow loop transcription of insightface."""

import itertools
import math

import numpy as np
import pytest

from tfface.eval import template_pooling as tp


def _ref_template_features(emb, flips, faceness, templates, medias, flip, norm_score, detector):
    """insightface's `process_embeddings` + `image2template_feature`, one number at a time.

    As insightface: media features are means, the template feature is the *sum* of its media
    features (tfface takes the mean; the normalisation makes them equal), then normalised
    (a zero vector stays zero, as sklearn's `normalize`). Returns {template: [D floats]}.
    """
    n, dim = len(emb), len(emb[0])
    feats = []
    for i in range(n):
        v = [float(emb[i][d]) + (float(flips[i][d]) if flip else 0.0) for d in range(dim)]
        if not norm_score:
            norm = math.sqrt(sum(x * x for x in v))
            if norm > 0:
                v = [x / norm for x in v]
        if detector:
            v = [x * float(faceness[i]) for x in v]
        feats.append(v)
    out = {}
    for t in sorted(set(int(x) for x in templates)):
        total = [0.0] * dim
        for m in sorted(set(int(medias[i]) for i in range(n) if templates[i] == t)):
            members = [i for i in range(n) if templates[i] == t and medias[i] == m]
            for d in range(dim):
                total[d] += sum(feats[i][d] for i in members) / len(members)
        norm = math.sqrt(sum(x * x for x in total))
        out[t] = [x / norm for x in total] if norm > 0 else total
    return out


def _random_images(seed, n=60, dim=5, num_templates=9):
    rng = np.random.default_rng(seed)
    templates = rng.choice(np.arange(num_templates) * 13 + 4, size=n)
    medias = rng.integers(0, 6, size=n)  # media ids repeat across templates
    emb = rng.normal(size=(n, dim)).astype(np.float32) * rng.uniform(0.2, 3, (n, 1))
    flips = (emb + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)
    faceness = rng.uniform(0.1, 1.0, n).astype(np.float32)
    return emb, flips, faceness, templates, medias


@pytest.mark.parametrize("norm_score, detector, flip", itertools.product([True, False], repeat=3))
def test_pooling_matches_loop_reference_in_every_mode(norm_score, detector, flip):
    emb, flips, faceness, templates, medias = _random_images(int(norm_score * 4 + detector * 2))
    pooled = tp.pool_templates(
        emb,
        templates,
        medias,
        flip_embeddings=flips,
        faceness=faceness,
        flip=flip,
        norm_score=norm_score,
        detector_score=detector,
        chunk_rows=7,  # several templates per chunk, and templates bigger than a chunk
    )
    ref = _ref_template_features(
        emb, flips, faceness, templates, medias, flip, norm_score, detector
    )
    assert pooled.template_ids.tolist() == sorted(ref)
    np.testing.assert_allclose(pooled.features, [ref[t] for t in sorted(ref)], atol=1e-12)
    for k, t in enumerate(pooled.template_ids):
        assert pooled.num_media[k] == len(set(medias[templates == t].tolist()))
    assert pooled.num_zero == 0


def test_weighting_changes_the_pooled_feature_as_described():
    """Two images in one media: norms 1 and 3 (pointing along x and y), scores 1 and 0.5.

    N1D1: (1, 0)·1 + (0, 3)·0.5 = (1, 1.5) → direction (2, 3)/√13.
    N0D1: (1, 0)·1 + (0, 1)·0.5 = (1, 0.5) → (2, 1)/√5.
    N1D0: (1, 0) + (0, 3) → (1, 3)/√10.   N0D0: (1, 1)/√2.
    """
    emb = np.array([[1.0, 0.0], [0.0, 3.0]])
    kw = dict(templates=[7, 7], medias=[1, 1], faceness=[1.0, 0.5], flip=False)
    expect = {
        (True, True): [2, 3],
        (False, True): [2, 1],
        (True, False): [1, 3],
        (False, False): [1, 1],
    }
    for (norm_score, detector), direction in expect.items():
        pooled = tp.pool_templates(emb, norm_score=norm_score, detector_score=detector, **kw)
        np.testing.assert_allclose(
            pooled.features[0], np.array(direction) / np.linalg.norm(direction)
        )


def test_media_are_averaged_before_templates():
    """Template 1: media A holds three images along x, media B one along y. Media first:
    mean(A) = x, B = y → (1, 1)/√2; a plain image mean would give (3, 1)/√10."""
    emb = np.array([[1.0, 0], [1, 0], [1, 0], [0, 1]])
    pooled = tp.pool_templates(
        emb, [1, 1, 1, 1], [10, 10, 10, 11], flip=False, detector_score=False
    )
    np.testing.assert_allclose(pooled.features[0], [2**-0.5, 2**-0.5])
    assert pooled.num_media.tolist() == [2]


def test_zero_templates_stay_zero_and_score_zero():
    emb = np.array([[1.0, 0], [0, 1], [1, 1]])
    pooled = tp.pool_templates(emb, [3, 5, 5], [1, 2, 3], faceness=[0.0, 1.0, 1.0], flip=False)
    assert pooled.num_zero == 1
    np.testing.assert_array_equal(pooled.features[0], [0.0, 0.0])
    scores = pooled.scores([3, 5, 5], [5, 3, 5])
    np.testing.assert_allclose(scores, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("path", ["gram blocks", "gather"])
def test_scores_are_cosines_of_template_features(path, monkeypatch):
    """Many pairs over few first templates take the F[a] @ Fᵀ path (in blocks of 3 rows
    here); a few pairs of distinct templates take the gather path (in chunks of 5)."""
    emb, flips, faceness, templates, medias = _random_images(9, n=40, num_templates=12)
    pooled = tp.pool_templates(emb, templates, medias, flips, faceness)
    ids = pooled.template_ids
    rng = np.random.default_rng(1)
    if path == "gram blocks":
        monkeypatch.setattr(tp, "_GEMM_BLOCK_VALUES", 3 * ids.size)
        monkeypatch.setattr(np, "einsum", None)  # the gather path would fail
        # 7 distinct × 12 templates <= 8 × 300 pairs; the side with fewer distinct
        # templates is the second one here, and is found.
        t1 = rng.choice(ids, size=300)
        t2 = rng.choice(ids[:7], size=300)
    else:
        t1, t2 = rng.permutation(ids), rng.permutation(ids)  # 12 × 12 > 8 × 12
    scores = pooled.scores(t1, t2, chunk=5)
    ref = _ref_template_features(emb, flips, faceness, templates, medias, True, True, True)
    for a, b, s in zip(t1, t2, scores, strict=True):
        assert s == pytest.approx(sum(x * y for x, y in zip(ref[a], ref[b], strict=True)))
    with pytest.raises(ValueError, match=r"Templates \[999\] have no pooled feature"):
        pooled.scores([ids[0]], [999])


def test_argument_errors():
    emb = np.ones((3, 2))
    with pytest.raises(ValueError, match="one row per image"):
        tp.pool_templates(emb, [1, 1], [1, 1], flip=False, detector_score=False)
    with pytest.raises(ValueError, match="`flip=True` needs `flip_embeddings`"):
        tp.pool_templates(emb, [1, 1, 1], [1, 1, 1], detector_score=False)
    with pytest.raises(ValueError, match="`detector_score=True` needs `faceness`"):
        tp.pool_templates(emb, [1, 1, 1], [1, 1, 1], flip=False)
    with pytest.raises(ValueError, match="one score per image"):
        tp.image_features(emb, faceness=[1.0], flip=False)
