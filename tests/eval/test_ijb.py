"""Tests for the IJB 1:1 evaluation: TAR@FAR rules, alignment of loose crops, embedding,
the report, and the embedding cache."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from tests.eval.ijb_fixture import FACE_SIZE
from tests.eval.ijb_fixture import write_ijb_tree
from tfface.eval import embedding_cache as ec
from tfface.eval import ijb
from tfface.eval import ijb_protocol
from tfface.eval import verification as v

# --------------------------------------------------------------------------------------
# TAR@FAR
# --------------------------------------------------------------------------------------
GENUINE = [0.9, 0.8, 0.7, 0.6]
IMPOSTOR = [0.85, 0.75, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0, -0.1]


def test_tar_at_far_hand_computed():
    """4 genuine and 10 impostor pairs. In descending score order (G genuine, I impostor):

        0.9 G, 0.85 I, 0.8 G, 0.75 I, 0.7 G, 0.6 G, 0.5 I, 0.4 I, … , −0.1 I

    ROC points (FP, TP) after each distinct score: (0,1) (1,1) (1,2) (2,2) (2,3) (2,4) (3,4)
    (4,4) … (10,4); FAR = FP/10, TAR = TP/4.

    "at_most" (highest TAR with FP <= floor(f·10)):
    - f = 0.05: 0.05·10 < 1 impostor → unreachable (NaN), under both rules.
    - f = 0.1: FP <= 1 → best (1,2): TAR 0.5 at threshold 0.8, FAR 0.1.
    - f = 0.16: FP <= 1 → TAR 0.5 (FAR 0.1).
    - f = 0.32: FP <= 3 → (3,4): TAR 1.0 at threshold 0.5, FAR 0.3.

    "insightface": sklearn's `roc_curve` keeps only corners (a point whose FP and TP second
    differences are both 0 is dropped): (0,1) (1,1) (1,2) (2,2) (2,4) (10,4), plus (0,0).
    FARs 0, 0, 0.1, 0.1, 0.2, 0.2, 1.0. Nearest FAR, ties to the higher TAR:
    - f = 0.1: FAR 0.1 → TAR 0.5 (threshold 0.8).
    - f = 0.16: |0.2 − 0.16| = 0.04 < 0.06 → FAR 0.2, TAR 1.0 (threshold 0.6): a FAR *above*
      the target, where "at_most" says 0.5.
    - f = 0.32: FAR 0.3 is not a corner (dropped); nearest corner is 0.2 → TAR 1.0 at
      threshold 0.6, FAR 0.2.
    """
    scores = np.array(GENUINE + IMPOSTOR)
    issame = np.array([True] * 4 + [False] * 10)
    fars = (0.05, 0.1, 0.16, 0.32)
    at_most = v.tar_at_far(scores, issame, fars)
    expect = [(math.nan, math.nan, math.nan), (0.5, 0.8, 0.1), (0.5, 0.8, 0.1), (1.0, 0.5, 0.3)]
    for entry, (tar, thr, far) in zip(at_most, expect, strict=True):
        got = (entry["tar"], entry["threshold"], entry["far_actual"])
        np.testing.assert_allclose(got, (tar, thr, far))
        assert entry["resolvable"] == (not math.isnan(tar))
    nearest = v.tar_at_far(scores, issame, fars, rule="insightface")
    expect = [(math.nan, math.nan, math.nan), (0.5, 0.8, 0.1), (1.0, 0.6, 0.2), (1.0, 0.6, 0.2)]
    for entry, (tar, thr, far) in zip(nearest, expect, strict=True):
        got = (entry["tar"], entry["threshold"], entry["far_actual"])
        np.testing.assert_allclose(got, (tar, thr, far))
        assert entry["resolvable"] == (not math.isnan(tar))
    with pytest.raises(ValueError, match="`rule` must be one of"):
        v.tar_at_far(scores, issame, fars, rule="nearest")


@pytest.mark.parametrize("seed, quantize", [(0, None), (1, 20), (2, 5)])
def test_insightface_rule_matches_sklearn_and_insightface_loop(seed, quantize):
    """The rule as ijb_11.py writes it, on sklearn's own ROC (ties forced by quantising)."""
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(seed)
    issame = rng.random(3000) < 0.1
    scores = rng.normal(size=issame.size) + 1.5 * issame
    if quantize:
        scores = np.round(scores * quantize) / quantize
    fars = (1e-4, 3e-4, 1e-3, 2e-3, 0.01, 0.05, 0.1, 0.3)
    ours = v.tar_at_far(scores, issame, fars, rule="insightface")
    fpr, tpr, thresholds = roc_curve(issame.astype(int), scores)
    fpr, tpr, thresholds = np.flipud(fpr), np.flipud(tpr), np.flipud(thresholds)
    n_neg = int(np.sum(~issame))
    for entry, f in zip(ours, fars, strict=True):
        if f * n_neg < 1:
            assert not entry["resolvable"] and math.isnan(entry["tar"])
            continue
        _, k = min(zip(abs(fpr - f), range(len(fpr)), strict=True))
        assert entry["resolvable"]
        assert (entry["tar"], entry["far_actual"], entry["threshold"]) == (
            tpr[k],
            fpr[k],
            thresholds[k],
        )


# --------------------------------------------------------------------------------------
# Loose crops: alignment and embedding
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_ijb_tree(tmp_path_factory.mktemp("ijb"))


def test_alignment_undoes_the_loose_crop_placement(tree):
    """Aligning the loose crop by its written points gives (up to resampling and JPEG) the
    same crop as aligning the original render by its own points; swapping x and y does not."""
    from tfface.align.align_face import align_face

    p = ijb_protocol.load_ijb_protocol(tree.root, "IJBC")
    errors, swapped_errors = [], []
    for i in range(6):
        direct = align_face(tree.faces[i], tree.face_landmarks[i], image_size=FACE_SIZE)
        loose = ijb.load_aligned(p.image_paths[i], p.landmarks[i], FACE_SIZE)
        swapped = ijb.load_aligned(p.image_paths[i], p.landmarks[i][:, ::-1], FACE_SIZE)
        inner = (slice(8, -8), slice(8, -8))  # the face, away from the black borders
        errors.append(np.abs(loose[inner].astype(float) - direct[inner]).mean())
        swapped_errors.append(np.abs(swapped[inner].astype(float) - direct[inner]).mean())
    assert max(errors) < 4.0, errors  # measured 2.0–2.8
    assert min(swapped_errors) > 3 * max(errors), (errors, swapped_errors)


def _mean_pixel_embed(x):
    """A deterministic 'model': per-channel means of the left and right halves (6-D), so the
    mirror image's embedding swaps the halves."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half].mean((1, 2)), x[:, :, half:].mean((1, 2))], axis=1)


def test_embed_loose_crops_matches_per_image_embedding(tree):
    p = ijb_protocol.load_ijb_protocol(tree.root, "IJBC")
    seen = []
    emb, flips, failures = ijb.embed_loose_crops(
        _mean_pixel_embed,
        p.image_paths,
        p.landmarks,
        32,
        batch_size=5,
        workers=2,
        on_batch=lambda idx, e, f: seen.append((idx.copy(), e.copy(), f.copy())),
    )
    assert failures == [] and emb.shape == (len(tree.names), 6) and emb.dtype == np.float32
    for i in (0, 7, len(tree.names) - 1):
        crop = ijb.load_aligned(p.image_paths[i], p.landmarks[i], 32)[None].astype(np.float32)
        np.testing.assert_allclose(emb[i], _mean_pixel_embed(crop)[0], rtol=1e-6)
        np.testing.assert_allclose(flips[i], _mean_pixel_embed(crop[:, :, ::-1])[0], rtol=1e-6)
    assert np.concatenate([s[0] for s in seen]).tolist() == list(range(len(tree.names)))
    np.testing.assert_array_equal(np.concatenate([s[1] for s in seen]), emb)


def test_unreadable_crops_are_listed_not_fatal(tree, tmp_path):
    p = ijb_protocol.load_ijb_protocol(tree.root, "IJBC")
    paths = list(p.image_paths[:6])
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    paths[2] = str(tmp_path / "bad.jpg")
    paths[4] = str(tmp_path / "absent.jpg")
    emb, flips, failures = ijb.embed_loose_crops(
        _mean_pixel_embed, paths, p.landmarks[:6], 32, batch_size=4
    )
    assert [k for k, _ in failures] == [2, 4]
    assert "bad.jpg: Cannot decode" in failures[0][1] and "absent.jpg" in failures[1][1]
    assert np.isnan(emb[[2, 4]]).all() and np.isfinite(emb[[0, 1, 3, 5]]).all()


def test_embed_fn_output_is_checked(tree):
    p = ijb_protocol.load_ijb_protocol(tree.root, "IJBC")
    with pytest.raises(ValueError, match="must map .* to \\[N, D\\]"):
        ijb.embed_loose_crops(lambda x: x[:1, 0, 0], p.image_paths[:2], p.landmarks[:2], 16)
    with pytest.raises(ValueError, match="returned NaN or inf"):
        ijb.embed_loose_crops(
            lambda x: np.full((len(x), 2), np.nan), p.image_paths[:2], p.landmarks[:2], 16
        )


# --------------------------------------------------------------------------------------
# Evaluation and report
# --------------------------------------------------------------------------------------
def test_identity_oracle_embeddings_give_perfect_verification(tree, tmp_path):
    """Embeddings = one-hot identity (plus a tiny per-image jitter): every genuine template
    pair scores ~1 and every impostor ~0, so TAR = 1 wherever FAR is reachable."""
    p = ijb_protocol.load_ijb_protocol(tree.root, "IJBC")
    rng = np.random.default_rng(0)
    emb = np.eye(8)[tree.identities] + 0.01 * rng.normal(size=(len(tree.names), 8))
    result, scores = ijb.evaluate_ijb(p, emb, emb, model="oracle", image_size=112)
    assert result.num_zero_templates == 0
    assert (result.num_pairs, result.num_genuine, result.num_impostor) == (28, 4, 24)
    assert (result.num_images, result.num_templates) == (len(tree.names), 8)
    media = set(zip(tree.templates.tolist(), tree.medias.tolist(), strict=True))
    assert result.num_media == len(media)
    assert np.all(scores[p.labels] > 0.99) and np.all(np.abs(scores[~p.labels]) < 0.1)
    assert result.auc == pytest.approx(1.0) and result.eer == 0.0 and result.mode == "N1D1F1"
    for rule in (result.tar_at_far, result.tar_at_far_insightface):
        for entry in rule:
            assert entry["resolvable"] == (entry["far"] >= 1 / 24)
            assert entry["tar"] == 1.0 or not entry["resolvable"]
    json_path, png_path = tmp_path / "r.json", tmp_path / "r.png"
    ijb.write_ijb_report(result, json_path, png_path, extra={"embeddings": {"from_cache": 3}})
    report = json.loads(json_path.read_text())
    assert report["summary"].startswith("IJBC 1:1 N1D1F1, 28 pairs (4 genuine): TAR@FAR 1e-6 ")
    assert "unreachable" in report["summary"] and "1e-1 1.0000" in report["summary"]
    assert report["tar_at_far"][0] == {
        "far": 1e-6,
        "tar": None,
        "threshold": None,
        "far_actual": None,
        "resolvable": False,
    }
    assert report["embeddings"] == {"from_cache": 3} and report["subset"] is None
    assert report["roc_far"][0] == 0.0 and report["roc_tar"][-1] == 1.0
    with Image.open(png_path) as img:
        assert img.format == "PNG" and img.size == (640, 500)


# --------------------------------------------------------------------------------------
# Embedding cache
# --------------------------------------------------------------------------------------
def test_cache_round_trip_lookup_and_mismatches(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"weights v1")
    fp = ec.model_fingerprint(model)
    path = tmp_path / "c.npz"
    cache = ec.EmbeddingCache.open(path, "IJBC", fp, model=str(model))
    assert len(cache) == 0 and not path.exists()
    names = np.array(["1.jpg", "2.jpg", "3.jpg"])
    lms = np.arange(30, dtype=np.float32).reshape(3, 5, 2)
    e = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.set_image_size(112)
    cache.add(names[:2], lms[:2], e[:2], -e[:2])
    cache.save()
    again = ec.EmbeddingCache.open(path, "IJBC", fp)
    assert len(again) == 2 and again.image_size == 112
    moved = lms.copy()
    moved[1, 0, 0] += 0.001  # landmarks changed → that image must be re-embedded
    rows = again.lookup(names, moved)
    assert rows.tolist() == [0, -1, -1]
    got_e, got_f = again.get(rows[:1])
    np.testing.assert_array_equal(got_e, e[:1])
    np.testing.assert_array_equal(got_f, -e[:1])
    again.add(names[1:], moved[1:], e[1:] + 100, e[1:])
    again.save()
    third = ec.EmbeddingCache.open(path, "IJBC", fp)
    rows = third.lookup(names, moved)
    assert sorted(rows.tolist()) == [0, 1, 2]
    np.testing.assert_array_equal(third.get(rows)[0], np.concatenate([e[:1], e[1:] + 100]))
    with pytest.raises(ec.CacheMismatchError, match="holds 112×112 crops' embeddings, not 96"):
        third.set_image_size(96)
    with pytest.raises(ec.CacheMismatchError, match="written for dataset 'IJBC'"):
        ec.EmbeddingCache.open(path, "IJBB", fp)
    model.write_bytes(b"weights v2")
    with pytest.raises(ec.CacheMismatchError, match="written for fingerprint 'sha256:"):
        ec.EmbeddingCache.open(path, "IJBC", ec.model_fingerprint(model))
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ec.CacheMismatchError, match="not a tfface IJB embedding cache"):
        ec.EmbeddingCache.open(tmp_path / "other.npz", "IJBC", fp)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ec.CacheMismatchError, match="not a readable embedding cache"):
        ec.EmbeddingCache.open(tmp_path / "junk.npz", "IJBC", fp)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.npz",
        "junk.npz",
        "m.keras",
        "other.npz",
    ]  # no temporary files left behind


def test_saved_model_fingerprint_covers_graph_and_variables(tmp_path):
    sm = tmp_path / "sm"
    (sm / "variables").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(b"graph")
    (sm / "variables" / "variables.index").write_bytes(b"index 1")
    first = ec.model_fingerprint(sm)
    (sm / "variables" / "variables.index").write_bytes(b"index 2")
    assert ec.model_fingerprint(sm) != first
    with pytest.raises(FileNotFoundError, match="holds no saved_model.pb"):
        ec.model_fingerprint(tmp_path / "sm" / "variables")
