"""The `Store` contract (tfface/gallery/store.py), checked through the `Gallery` API on every
backend: SQLite, SQLite searched through FAISS IVF / HNSW, and milvus-lite (the `backend`
fixture, tests/gallery/conftest.py). A new backend listed in `registry.STORES` gets a
`backend` entry and runs these unchanged."""

import json
import os

import numpy as np
import pytest

from tfface.gallery import GalleryError
from tfface.gallery import GalleryModelMismatchError
from tfface.gallery import GalleryNotFoundError
from tfface.gallery import Match
from tfface.gallery import registry

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


def test_enroll_search_matches_brute_force(backend):
    rng = np.random.default_rng(0)
    # Names are data: quotes, backslashes and slashes reach no filter or path.
    rows = {
        f'id {i} "quoted" \\ ../{i}': _unit(rng, int(rng.integers(1, 6))) * rng.uniform(0.5, 3)
        for i in range(40)
    }
    g = backend.open(model_info=MODEL)
    for name, vecs in rows.items():
        assert g.enroll(name, vecs) == len(vecs)
    assert g.identities() == sorted((name, len(v)) for name, v in rows.items())
    assert len(g) == sum(len(v) for v in rows.values())
    probes = _unit(rng, 25)
    for by in ("max", "mean"):
        for k in (7, 60):  # 60: more than the 40 identities, so every one comes back once
            got = g.search(probes, k=k, by=by)
            want = _brute_force(rows, probes, k, by)
            for hits, ref in zip(got, want, strict=True):
                assert [m.name for m in hits] == [n for n, _ in ref]
                np.testing.assert_allclose(
                    [m.similarity for m in hits], [s for _, s in ref], atol=1e-5
                )
                assert all(isinstance(m, Match) for m in hits)


def test_an_empty_gallery_finds_nobody(backend):
    g = backend.open(model_info=MODEL)
    probes = _unit(np.random.default_rng(12), 3)
    assert g.search(probes, k=2, by="max") == [[], [], []]
    assert g.search(probes, k=2, by="mean") == [[], [], []]
    assert g.identities() == [] and len(g) == 0 and list(g.rows()) == []


def test_persists_across_open_and_records_model(backend):
    rng = np.random.default_rng(1)
    x = _unit(rng, 6)
    with backend.open(model_info=MODEL) as g:
        g.enroll("alice", x[:3], sources=["a1.jpg", "a2.jpg", "a3.jpg"])
        g.enroll("bob", x[3:])
        before = g.search(x, k=2)
    g = backend.open()  # no model_info: opens whatever is there
    assert g.model_info == MODEL
    assert g.identities() == [("alice", 3), ("bob", 3)]
    assert len(g) == 6
    assert g.search(x[4], k=1)[0][0].name == "bob"
    assert [[m.name for m in h] for h in g.search(x, k=2)] == [[m.name for m in h] for h in before]
    stats = g.stats()
    assert stats["identities"] == 2 and stats["embeddings"] == 6
    assert stats["backend"] == registry.store_class(backend.location()).__name__
    assert stats["bytes_on_disk"] > 0  # every backend here keeps a local file
    json.dumps(stats)
    g.close()


def test_duplicates_are_idempotent(backend):
    rng = np.random.default_rng(2)
    x = _unit(rng, 6)
    g = backend.open(model_info=MODEL)
    assert g.enroll("alice", x[:2], sources=["a.jpg", "b.jpg"]) == 2
    # Same sources with other vectors: skipped by (name, source).
    assert g.enroll("alice", x[2:4], sources=["a.jpg", "b.jpg"]) == 0
    # Same vectors (scaled: equal after normalisation), no source: skipped by vector.
    assert g.enroll("alice", 3.0 * x[:2]) == 0
    # The same vector under another name is another identity's row.
    assert g.enroll("bob", x[:1], metadata=[{"camera": 3}]) == 1
    # Duplicates inside one call count once: the same direction, then the same source.
    assert g.enroll("carol", np.stack([x[4], 2.0 * x[4]])) == 1
    assert g.enroll("dave", x[4:6], sources=["d.jpg", "d.jpg"]) == 1
    assert g.identities() == [("alice", 2), ("bob", 1), ("carol", 1), ("dave", 1)]
    assert len(g) == 5


def test_remove_and_rename(backend):
    rng = np.random.default_rng(3)
    x = _unit(rng, 4)
    g = backend.open(model_info=MODEL)
    g.enroll("alice", x[:1])
    g.enroll("bob", x[1:2], sources=["bob.jpg"], metadata=[{"camera": 3}])
    g.enroll("carol", x[2:3])
    assert g.search(x[1], k=1)[0][0].name == "bob"  # a mirrored store builds its copy here
    g.rename("bob", "robert")
    assert g.search(x[1], k=1)[0][0].name == "robert"
    assert g.identities() == [("alice", 1), ("carol", 1), ("robert", 1)]
    # A rename moves the row whole: vector, source and metadata.
    ((name, source, vector, meta),) = [r for r in g.rows() if r[0] == "robert"]
    assert (source, meta) == ("bob.jpg", {"camera": 3})
    np.testing.assert_allclose(vector, x[1], atol=1e-6)
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
    assert len(g) == 2
    # A removed name can be enrolled again, with the same vector.
    assert g.enroll("alice", x[:1]) == 1
    assert g.search(x[0], k=1)[0][0] == Match("alice", pytest.approx(1.0, abs=1e-5))
    assert g.remove("robert") == 1 and g.remove("carol") == 1
    assert [m.name for m in g.search(x[1], k=5)[0]] == ["alice"]


def test_model_mismatch_on_open_and_search(backend):
    g = backend.open(model_info=MODEL)
    g.enroll("alice", _unit(np.random.default_rng(4), 1))
    other = dict(MODEL, fingerprint="fff000")
    with pytest.raises(GalleryModelMismatchError, match="fingerprint") as e:
        backend.open(model_info=other)
    assert "abc123" in str(e.value) and "fff000" in str(e.value)
    with pytest.raises(GalleryModelMismatchError, match="version"):
        g.search(np.ones(DIM), model_info=dict(MODEL, version="2"))
    with pytest.raises(GalleryModelMismatchError, match="embedding_size"):
        backend.open(model_info=dict(MODEL, embedding_size=32))
    # Probes of another size are refused even without model_info.
    with pytest.raises(ValueError, match=r"shape \[n, 16\].*\(3, 32\)"):
        g.search(np.ones((3, 32)))


def test_a_new_gallery_needs_model_info_and_create(backend):
    with pytest.raises(GalleryNotFoundError, match="No gallery"):
        backend.open("missing", model_info=MODEL, create=False)
    if backend.kind != "milvus-lite":
        assert not os.path.exists(backend.location("missing")), "create=False created a file"
    with pytest.raises(GalleryError, match="pass model_info"):
        backend.open("new")
    with pytest.raises(ValueError, match="embedding_size"):
        backend.open("new", model_info={"name": "x"})
    g = backend.open("new", model_info=MODEL)
    assert g.model_info == MODEL and len(g) == 0


def test_bad_embeddings_are_rejected_with_the_row(backend):
    g = backend.open(model_info=MODEL)
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


def test_non_unit_vectors_are_normalised(backend):
    g = backend.open(model_info=MODEL)
    x = _unit(np.random.default_rng(6), 2)
    g.enroll("alice", 10.0 * x[:1])
    (hit,) = g.search(0.01 * x[:1], k=1)[0]
    assert hit.similarity == pytest.approx(1.0, abs=1e-6)
    ((_, _, vector, _),) = g.rows()
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-6)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path", "a/b\\c", "..", "José 李"])
def test_names_are_data_not_paths(backend, tmp_path, name):
    g = backend.open(model_info=MODEL)
    x = _unit(np.random.default_rng(7), 1)
    g.enroll(name, x)
    g.export(str(tmp_path / "export.npz"))
    assert g.search(x, k=1)[0][0].name == name
    assert g.identities() == [(name, 1)]
    # Only the gallery's own files and the export exist: no name became a path.
    assert set(os.listdir(tmp_path)) <= {"export.npz", "galleries"}
    if os.path.isdir(tmp_path / "galleries"):
        assert all(f.startswith("g.gallery") for f in os.listdir(tmp_path / "galleries"))


def test_export_import_round_trip(backend, tmp_path):
    rng = np.random.default_rng(8)
    x = _unit(rng, 5)
    g = backend.open("a", model_info=MODEL)
    g.enroll("alice", x[:2], sources=["a1", "a2"], metadata=[{"q": 1}, None])
    g.enroll("bob", x[2:])
    assert g.export(str(tmp_path / "a.npz")) == 5
    names, emb = g.to_arrays()
    assert names == ["alice", "alice", "bob", "bob", "bob"]  # enrolment order
    np.testing.assert_allclose(emb, x, atol=1e-6)
    assert [r[1] for r in g.rows()] == ["a1", "a2", None, None, None]
    assert [r[3] for r in g.rows()] == [{"q": 1}, None, None, None, None]
    with np.load(str(tmp_path / "a.npz"), allow_pickle=False) as data:
        assert data["embeddings"].shape == (5, DIM)
    h = backend.import_(str(tmp_path / "a.npz"), "b")
    assert h.model_info == MODEL
    assert h.identities() == g.identities()
    assert [r[1] for r in h.rows()] == ["a1", "a2", None, None, None]
    probes = _unit(rng, 4)
    for a, b in zip(h.search(probes, k=2), g.search(probes, k=2), strict=True):
        assert [m.name for m in a] == [m.name for m in b]
        np.testing.assert_allclose([m.similarity for m in a], [m.similarity for m in b], atol=1e-5)
    # Importing twice adds nothing; importing into another model's gallery is refused.
    h2 = backend.import_(str(tmp_path / "a.npz"), "b")
    assert len(h2) == 5
    backend.open("c", model_info=dict(MODEL, name="other"))
    with pytest.raises(GalleryModelMismatchError):
        backend.import_(str(tmp_path / "a.npz"), "c")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(GalleryError, match="not a tfface gallery export"):
        backend.import_(str(tmp_path / "junk.npz"), "d")


def test_second_handle_sees_writes_of_the_first(backend):
    rng = np.random.default_rng(9)
    x = _unit(rng, 3)
    a = backend.open(model_info=MODEL)
    b = backend.open(model_info=MODEL)
    a.enroll("alice", x[:1])
    assert b.search(x[0], k=1)[0][0].name == "alice"
    a.enroll("bob", x[1:2])  # appended to a mirrored store's copy at its next search
    assert b.search(x[1], k=1)[0][0].name == "bob"
    a.rename("bob", "robert")  # a rename rebuilds it
    assert b.search(x[1], k=1)[0][0].name == "robert"
    a.remove("robert")  # and so does a removal
    assert [m.name for m in b.search(x[1], k=5)[0]] == ["alice"]
    assert b.identities() == [("alice", 1)]


def test_settings_persist_and_merge(backend):
    """The settings capability `tfface calibrate` writes its threshold through."""
    rng = np.random.default_rng(10)
    x = _unit(rng, 3)
    with backend.open(model_info=MODEL) as g:
        assert g.settings() == {}
        g.enroll("alice", x[:2])
        calibrated = {"value": 0.8125, "target": {"fpir": 0.01}, "strangers": 44}
        assert g.update_settings(identify_threshold=calibrated) == {
            "identify_threshold": calibrated
        }
        assert g.update_settings(note="a") == {"identify_threshold": calibrated, "note": "a"}
        with pytest.raises(ValueError, match="JSON"):
            g.update_settings(bad=object())
        before = g.search(x, k=1)
    g = backend.open(model_info=MODEL)  # a reopened gallery keeps them
    assert g.settings() == {"identify_threshold": calibrated, "note": "a"}
    assert g.stats()["settings"] == g.settings()  # `tfface gallery stats` shows them
    # Settings are not rows: counts and searches are unchanged.
    assert len(g) == 2 and g.identities() == [("alice", 2)]
    assert g.search(x, k=1) == before
    assert g.update_settings(note=None) == {"identify_threshold": calibrated}
    g.enroll("bob", x[2:])
    assert g.settings() == {"identify_threshold": calibrated}
    g.close()
