"""`Gallery` beyond the store contract (test_store_contract.py runs that on every backend):
its own input checks, the location registry, and what only the embedded SQLite store and
its in-memory mirror do (file checks, bfloat16, one read snapshot per refresh)."""

import numpy as np
import pytest

from tfface.gallery import Gallery
from tfface.gallery import GalleryError
from tfface.gallery import registry
from tfface.gallery.milvus_store import MilvusStore
from tfface.gallery.sqlite_store import SQLiteStore
from tfface.gallery.store import Store

DIM = 16
MODEL = {"name": "test-net", "version": "1", "embedding_size": DIM, "fingerprint": "abc123"}


def _unit(rng, n, dim=DIM):
    x = rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "people.gallery")


@pytest.mark.parametrize("name", ["", None, "a\x00b", "x" * 1025, 5])
def test_bad_names_are_rejected(path, name):
    g = Gallery.open(path, model_info=MODEL)
    with pytest.raises(ValueError, match="Identity name"):
        g.enroll(name, np.ones(DIM))


def test_not_a_gallery_file(tmp_path):
    bad = tmp_path / "x.gallery"
    bad.write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(GalleryError, match="not a tfface gallery"):
        Gallery.open(str(bad), model_info=MODEL)
    with pytest.raises(GalleryError, match="directory"):
        Gallery.open(str(tmp_path), model_info=MODEL)


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


@pytest.mark.parametrize(
    "location, store",
    [
        ("people.gallery", SQLiteStore),
        ("/data/people", SQLiteStore),
        ("milvus-lite:/data/people.db", MilvusStore),
        ("milvus://db:19530/people", MilvusStore),
        ("http://db:19530/people", MilvusStore),
        ("https://db:443/people", MilvusStore),
    ],
)
def test_the_registry_maps_locations_to_stores(location, store):
    assert registry.store_class(location) is store


def test_the_registry_refuses_clashing_prefixes():
    class Copy(Store):
        prefixes = ("milvus://",)

    class Default(SQLiteStore):
        pass

    with pytest.raises(ValueError, match="claimed by both"):
        registry.check_stores((MilvusStore, Copy, SQLiteStore))
    with pytest.raises(ValueError, match="Exactly one"):
        registry.check_stores((MilvusStore, SQLiteStore, Default))
    with pytest.raises(ValueError, match="Exactly one"):
        registry.check_stores((MilvusStore,))
    assert set(registry.prefixes()) == set(MilvusStore.prefixes)


def test_every_store_implements_the_whole_contract():
    for store in registry.STORES:
        assert issubclass(store, Store)
        assert not store.__abstractmethods__, (store, store.__abstractmethods__)


def test_options_a_store_does_not_take_are_refused(path):
    with pytest.raises(ValueError, match="index must be one of"):
        Gallery.open(path, model_info=MODEL, index="lsh")
    with pytest.raises(ValueError, match="dtype must be one of"):
        Gallery.open(path, model_info=MODEL, dtype="float16")
    with pytest.raises(ValueError, match=r"Unknown options for an embedded gallery: \['token'\]"):
        Gallery.open(path, model_info=MODEL, token="x")
    with pytest.raises(ValueError, match="a Milvus collection brings its own index"):
        Gallery.open("milvus-lite:/nonexistent/x.db", model_info=MODEL, index="hnsw")
    with pytest.raises(ValueError, match=r"Unknown options for a Milvus gallery: \['chunk_rows'\]"):
        Gallery.open("milvus-lite:/nonexistent/x.db", model_info=MODEL, chunk_rows=8)


def test_opening_and_listing_load_no_search_machinery(path):
    """The mirror (and TensorFlow or FAISS with it) is built at the first search only."""
    g = Gallery.open(path, model_info=MODEL)
    g.enroll("alice", _unit(np.random.default_rng(13), 2))
    assert g.identities() == [("alice", 2)]
    assert g._store._mirror is None
    g.search(np.ones(DIM), k=1)
    assert g._store._mirror is not None
