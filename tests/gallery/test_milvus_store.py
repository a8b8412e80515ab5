"""The Gallery contract on the Milvus backend, run against milvus-lite (embedded Milvus).

Pointing the same code at a Milvus server only changes the location string; these tests
use milvus-lite so they need no service. Skipped when pymilvus / milvus-lite are missing
(`pip install -r requirements-milvus.txt`, or `make test-milvus`).
"""

import numpy as np
import pytest

pytest.importorskip(
    "pymilvus", reason="Milvus backend needs: pip install -r requirements-milvus.txt"
)
pytest.importorskip(
    "milvus_lite", reason="milvus-lite tests need: pip install -r requirements-milvus.txt"
)

from tfface.gallery import Gallery  # noqa: E402
from tfface.gallery import GalleryError  # noqa: E402
from tfface.gallery import GalleryModelMismatchError  # noqa: E402
from tfface.gallery import milvus_store  # noqa: E402

DIM = 16
MODEL = {"name": "test-net", "version": "1", "embedding_size": DIM, "fingerprint": "abc123"}


def _unit(rng, n):
    x = rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def location(tmp_path_factory):
    # One milvus-lite file per module (starting milvus-lite costs ~1 s); a collection per test.
    return str(tmp_path_factory.mktemp("milvus") / "gallery.db")


@pytest.fixture
def gallery(location, request):
    g = Gallery.open(f"milvus-lite:{location}#{request.node.name.split('[')[0]}", model_info=MODEL)
    yield g
    g.close()


def test_parse_location():
    assert milvus_store.parse_location("milvus://db:19530/people") == ("http://db:19530", "people")
    assert milvus_store.parse_location("https://h:443/p") == ("https://h:443", "p")
    uri, coll = milvus_store.parse_location("milvus-lite:/tmp/x/y.db")
    assert uri == "/tmp/x/y.db" and coll == "tfface_gallery"
    with pytest.raises(ValueError, match="COLLECTION"):
        milvus_store.parse_location("milvus://db:19530")
    with pytest.raises(ValueError, match=r"\.db"):
        milvus_store.parse_location("milvus-lite:/tmp/x")
    with pytest.raises(ValueError, match="collection name"):
        milvus_store.parse_location("milvus://db:19530/bad-name;drop")


def test_create_false_does_not_create(location):
    with pytest.raises(GalleryError, match="No gallery"):
        Gallery.open(f"milvus-lite:{location}#never_created", model_info=MODEL, create=False)


def test_same_results_as_the_embedded_gallery(gallery, tmp_path):
    rng = np.random.default_rng(0)
    embedded = Gallery.open(str(tmp_path / "ref.gallery"), model_info=MODEL)
    for i in range(30):
        x = _unit(rng, int(rng.integers(1, 5)))
        name = f'id {i} "quoted" \\ ../{i}'  # names are data: quotes, backslashes, slashes
        assert gallery.enroll(name, x) == embedded.enroll(name, x) == len(x)
    probes = _unit(rng, 12)
    for by in ("max", "mean"):
        got = gallery.search(probes, k=5, by=by)
        want = embedded.search(probes, k=5, by=by)
        for g_hits, e_hits in zip(got, want, strict=True):
            assert [m.name for m in g_hits] == [m.name for m in e_hits]
            np.testing.assert_allclose(
                [m.similarity for m in g_hits], [m.similarity for m in e_hits], atol=1e-5
            )
    assert gallery.identities() == embedded.identities()
    assert len(gallery) == len(embedded)


def test_idempotent_remove_rename(gallery):
    rng = np.random.default_rng(1)
    x = _unit(rng, 4)
    assert gallery.enroll("alice", x[:2], sources=["a.jpg", "b.jpg"]) == 2
    assert gallery.enroll("alice", x[2:], sources=["a.jpg", "b.jpg"]) == 0
    assert gallery.enroll("alice", x[:2]) == 0
    assert gallery.enroll("bob", x[2:3], metadata=[{"camera": 3}]) == 1
    gallery.rename("bob", "robert")
    assert gallery.identities() == [("alice", 2), ("robert", 1)]
    assert gallery.search(x[2], k=1)[0][0].name == "robert"
    with pytest.raises(GalleryError, match="already exists"):
        gallery.rename("alice", "robert")
    assert gallery.remove("alice") == 2
    with pytest.raises(GalleryError, match="No identity"):
        gallery.remove("alice")
    assert [m.name for m in gallery.search(x[0], k=3)[0]] == ["robert"]
    assert len(gallery) == 1


def test_model_record_and_export(gallery, location, tmp_path):
    rng = np.random.default_rng(2)
    x = _unit(rng, 3)
    gallery.enroll("alice", x, sources=["1", "2", "3"], metadata=[{"i": 1}, None, None])
    gallery.close()
    where = "milvus-lite:" + location + "#test_model_record_and_export"
    with pytest.raises(GalleryModelMismatchError, match="fingerprint"):
        Gallery.open(where, model_info=dict(MODEL, fingerprint="zzz"))
    g = Gallery.open(where)
    assert g.model_info == MODEL
    assert g.export(str(tmp_path / "e.npz")) == 3
    h = Gallery.import_(str(tmp_path / "e.npz"), str(tmp_path / "copy.gallery"))
    assert h.identities() == [("alice", 3)]
    for a, b in zip(h.search(x, k=1), g.search(x, k=1), strict=True):
        assert a[0].name == b[0].name == "alice"
        assert a[0].similarity == pytest.approx(b[0].similarity, abs=1e-5)
    g.close()
