"""Tests for tfface.gallery.Gallery on the embedded (SQLite) backend: the API contract."""

import json
import os

import numpy as np
import pytest

from tfface.gallery import Gallery
from tfface.gallery import GalleryError
from tfface.gallery import GalleryModelMismatchError
from tfface.gallery import Match

DIM = 16
MODEL = {"name": "test-net", "version": "1", "embedding_size": DIM, "fingerprint": "abc123"}


def _unit(rng, n, dim=DIM):
    x = rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _brute_force(gallery_rows, probes, k, by):
    """Identity top-k with explicit loops: the reference for max and mean templates."""
    results = []
    for p in probes:
        p = p / np.linalg.norm(p)
        scores = {}
        for name, vecs in gallery_rows.items():
            sims = [float(np.dot(p, v / np.linalg.norm(v))) for v in vecs]
            scores[name] = max(sims) if by == "max" else sum(sims) / len(sims)
        results.append(sorted(scores.items(), key=lambda t: -t[1])[:k])
    return results


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "people.gallery")


def test_enroll_search_matches_brute_force(path):
    rng = np.random.default_rng(0)
    rows = {f"id{i}": _unit(rng, int(rng.integers(1, 6))) * rng.uniform(0.5, 3) for i in range(40)}
    g = Gallery.open(path, model_info=MODEL)
    for name, vecs in rows.items():
        assert g.enroll(name, vecs) == len(vecs)
    probes = _unit(rng, 25)
    for by in ("max", "mean"):
        got = g.search(probes, k=7, by=by)
        want = _brute_force(rows, probes, 7, by)
        for hits, ref in zip(got, want, strict=True):
            assert [m.name for m in hits] == [n for n, _ in ref]
            np.testing.assert_allclose([m.similarity for m in hits], [s for _, s in ref], atol=1e-5)
            assert all(isinstance(m, Match) for m in hits)


def test_persists_across_open_and_records_model(path):
    rng = np.random.default_rng(1)
    x = _unit(rng, 6)
    with Gallery.open(path, model_info=MODEL) as g:
        g.enroll("alice", x[:3], sources=["a1.jpg", "a2.jpg", "a3.jpg"])
        g.enroll("bob", x[3:])
    g = Gallery.open(path)  # no model_info: opens whatever is there
    assert g.model_info == MODEL
    assert g.identities() == [("alice", 3), ("bob", 3)]
    assert len(g) == 6
    assert g.search(x[4], k=1)[0][0].name == "bob"
    stats = g.stats()
    assert stats["identities"] == 2 and stats["embeddings"] == 6
    assert stats["bytes_on_disk"] > 0
    json.dumps(stats)


def test_duplicates_are_idempotent(path):
    rng = np.random.default_rng(2)
    x = _unit(rng, 4)
    g = Gallery.open(path, model_info=MODEL)
    assert g.enroll("alice", x[:2], sources=["a.jpg", "b.jpg"]) == 2
    # Same sources with other vectors: skipped by (name, source).
    assert g.enroll("alice", x[2:], sources=["a.jpg", "b.jpg"]) == 0
    # Same vectors (scaled: equal after normalisation), no source: skipped by vector.
    assert g.enroll("alice", 3.0 * x[:2]) == 0
    # The same vector under another name is another identity's row.
    assert g.enroll("bob", x[:1]) == 1
    assert g.identities() == [("alice", 2), ("bob", 1)]


def test_remove_and_rename(path):
    rng = np.random.default_rng(3)
    x = _unit(rng, 3)
    g = Gallery.open(path, model_info=MODEL)
    g.enroll("alice", x[:1])
    g.enroll("bob", x[1:2])
    g.enroll("carol", x[2:])
    assert g.search(x[1], k=1)[0][0].name == "bob"  # builds the in-memory copy
    g.rename("bob", "robert")
    assert g.search(x[1], k=1)[0][0].name == "robert"
    assert g.remove("alice") == 1
    assert [m.name for m in g.search(x[0], k=5)[0]] == sorted(
        ["robert", "carol"], key=lambda n: -float(np.dot(x[0], x[1 if n == "robert" else 2]))
    )
    with pytest.raises(GalleryError, match="already exists"):
        g.rename("robert", "carol")
    with pytest.raises(GalleryError, match="No identity named 'alice'"):
        g.remove("alice")
    with pytest.raises(GalleryError, match="No identity named 'zed'"):
        g.rename("zed", "x")


def test_model_mismatch_on_open_and_search(path):
    g = Gallery.open(path, model_info=MODEL)
    g.enroll("alice", _unit(np.random.default_rng(4), 1))
    other = dict(MODEL, fingerprint="fff000")
    with pytest.raises(GalleryModelMismatchError, match="fingerprint") as e:
        Gallery.open(path, model_info=other)
    assert "abc123" in str(e.value) and "fff000" in str(e.value)
    with pytest.raises(GalleryModelMismatchError, match="version"):
        g.search(np.ones(DIM), model_info=dict(MODEL, version="2"))
    with pytest.raises(GalleryModelMismatchError, match="embedding_size"):
        Gallery.open(path, model_info=dict(MODEL, embedding_size=32))
    # Probes of another size are refused even without model_info.
    with pytest.raises(ValueError, match=r"shape \[n, 16\].*\(3, 32\)"):
        g.search(np.ones((3, 32)))


def test_new_gallery_needs_model_info(path):
    with pytest.raises(GalleryError, match="pass model_info"):
        Gallery.open(path)
    with pytest.raises(ValueError, match="embedding_size"):
        Gallery.open(path, model_info={"name": "x"})
    with pytest.raises(GalleryError, match="No gallery"):
        Gallery.open(path + ".missing", model_info=MODEL, create=False)


def test_bad_embeddings_are_rejected_with_the_row(path):
    g = Gallery.open(path, model_info=MODEL)
    x = _unit(np.random.default_rng(5), 4)
    x[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf values in rows \[2\]"):
        g.enroll("alice", x)
    x[2] = 0.0
    with pytest.raises(ValueError, match=r"all-zero rows \[2\]"):
        g.enroll("alice", x)
    with pytest.raises(ValueError, match=r"shape \[n, 16\]"):
        g.enroll("alice", np.ones((2, 8)))
    with pytest.raises(ValueError, match="one entry per embedding"):
        g.enroll("alice", x[:2], sources=["only-one"])
    with pytest.raises(ValueError, match="JSON"):
        g.enroll("alice", x[:1], metadata=[{"bad": object()}])
    with pytest.raises(ValueError, match="by must be one of"):
        g.search(x[:1], by="median")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        g.search(x[:1], k=0)
    assert len(g) == 0, "a rejected enrolment writes nothing"


def test_non_unit_vectors_are_normalised(path):
    g = Gallery.open(path, model_info=MODEL)
    x = _unit(np.random.default_rng(6), 2)
    g.enroll("alice", 10.0 * x[:1])
    (hit,) = g.search(0.01 * x[:1], k=1)[0]
    assert hit.similarity == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path", "a/b\\c", "..", "José 李"])
def test_names_are_data_not_paths(tmp_path, name):
    path = tmp_path / "sub" / "g.gallery"
    g = Gallery.open(str(path), model_info=MODEL)
    x = _unit(np.random.default_rng(7), 1)
    g.enroll(name, x)
    g.export(str(tmp_path / "export.npz"))
    assert g.search(x, k=1)[0][0].name == name
    assert sorted(os.listdir(tmp_path)) == ["export.npz", "sub"]
    assert sorted(os.listdir(tmp_path / "sub"))[0] == "g.gallery"


@pytest.mark.parametrize("name", ["", None, "a\x00b", "x" * 1025, 5])
def test_bad_names_are_rejected(path, name):
    g = Gallery.open(path, model_info=MODEL)
    with pytest.raises(ValueError, match="Identity name"):
        g.enroll(name, np.ones(DIM))


def test_export_import_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    x = _unit(rng, 5)
    g = Gallery.open(str(tmp_path / "a.gallery"), model_info=MODEL)
    g.enroll("alice", x[:2], sources=["a1", "a2"], metadata=[{"q": 1}, None])
    g.enroll("bob", x[2:])
    assert g.export(str(tmp_path / "a.npz")) == 5
    names, emb = g.to_arrays()
    assert names == ["alice", "alice", "bob", "bob", "bob"]
    np.testing.assert_allclose(emb, x, atol=1e-6)
    assert [r[3] for r in g.rows()] == [{"q": 1}, None, None, None, None]
    with np.load(str(tmp_path / "a.npz"), allow_pickle=False) as data:
        assert data["embeddings"].shape == (5, DIM)
    h = Gallery.import_(str(tmp_path / "a.npz"), str(tmp_path / "b.gallery"))
    assert h.model_info == MODEL
    assert h.identities() == g.identities()
    probes = _unit(rng, 4)
    assert h.search(probes, k=2) == g.search(probes, k=2)
    # Importing twice adds nothing; importing into another model's gallery is refused.
    h2 = Gallery.import_(str(tmp_path / "a.npz"), str(tmp_path / "b.gallery"))
    assert len(h2) == 5
    Gallery.open(str(tmp_path / "c.gallery"), model_info=dict(MODEL, name="other"))
    with pytest.raises(GalleryModelMismatchError):
        Gallery.import_(str(tmp_path / "a.npz"), str(tmp_path / "c.gallery"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(GalleryError, match="not a tfface gallery export"):
        Gallery.import_(str(tmp_path / "junk.npz"), str(tmp_path / "d.gallery"))


def test_not_a_gallery_file(tmp_path):
    bad = tmp_path / "x.gallery"
    bad.write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(GalleryError, match="not a tfface gallery"):
        Gallery.open(str(bad), model_info=MODEL)
    with pytest.raises(GalleryError, match="directory"):
        Gallery.open(str(tmp_path), model_info=MODEL)


def test_second_handle_sees_writes_of_the_first(path):
    rng = np.random.default_rng(9)
    x = _unit(rng, 3)
    a = Gallery.open(path, model_info=MODEL)
    b = Gallery.open(path, model_info=MODEL)
    a.enroll("alice", x[:1])
    assert b.search(x[0], k=1)[0][0].name == "alice"
    a.enroll("bob", x[1:2])  # appended to b's copy at its next search
    assert b.search(x[1], k=1)[0][0].name == "bob"
    a.remove("bob")  # a removal rebuilds b's copy
    assert [m.name for m in b.search(x[1], k=5)[0]] == ["alice"]


def test_bfloat16_gallery_finds_the_same_identities(path):
    rng = np.random.default_rng(10)
    centers = _unit(rng, 30)
    g = Gallery.open(path, model_info=MODEL)
    for i, c in enumerate(centers):
        g.enroll(f"id{i}", c + 0.1 * rng.normal(size=(3, DIM)))
    probes = centers + 0.1 * rng.normal(size=centers.shape)
    exact = g.search(probes, k=1)
    half = Gallery.open(path, model_info=MODEL, dtype="bfloat16").search(probes, k=1)
    assert [h[0].name for h in half] == [h[0].name for h in exact]
    np.testing.assert_allclose(
        [h[0].similarity for h in half], [h[0].similarity for h in exact], atol=1e-2
    )


def test_a_write_between_the_reads_of_a_refresh_is_not_half_seen(path, monkeypatch):
    """Another process's enrolment lands between reading names and rows: the search uses
    one snapshot, so it sees the gallery before that enrolment, never a row without a name."""
    rng = np.random.default_rng(11)
    x = _unit(rng, 2)
    a = Gallery.open(path, model_info=MODEL)
    b = Gallery.open(path, model_info=MODEL)
    a.enroll("alice", x[:1])
    names = b._store.names

    def names_then_write(*args):
        out = names(*args)
        if not a.identities() or ("bob", 1) not in a.identities():
            a.enroll("bob", x[1:])  # commits while b is between its two reads
        return out

    monkeypatch.setattr(b._store, "names", names_then_write)
    assert [h[0].name for h in b.search(x, k=1)] == ["alice", "alice"]
    monkeypatch.undo()
    assert [h[0].name for h in b.search(x, k=1)] == ["alice", "bob"]
