"""FAISS IVF / HNSW gallery indexes: recall against the exact search on clustered data."""

import numpy as np
import pytest

pytest.importorskip("faiss", reason="ANN indexes need: pip install -r requirements-ann.txt")

from tfface.gallery import Gallery  # noqa: E402
from tfface.gallery import ann_index  # noqa: E402
from tfface.gallery import exact_search  # noqa: E402

DIM = 32


def _clustered(rng, n, centers, spread=0.35):
    """Unit vectors around random centres: like face embeddings, unlike uniform noise
    (on which every ANN index looks broken, since no neighbour is much nearer than another)."""
    x = centers[rng.integers(0, len(centers), n)] + spread * rng.normal(size=(n, DIM)) / np.sqrt(
        DIM
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _recall_at(exact_rows, ann_rows):
    return np.mean(
        [len(set(a) & set(e)) / len(e) for a, e in zip(ann_rows, exact_rows, strict=True)]
    )


@pytest.mark.parametrize(
    "kind, options",
    [("ivf", {"nprobe": 8}), ("hnsw", {"M": 16, "ef_construction": 40, "ef_search": 64})],
)
def test_recall_at_10_against_exact(kind, options):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(200, DIM))
    gallery = _clustered(rng, 8_000, centers)
    probes = _clustered(rng, 200, centers)
    index = ann_index.FaissRowIndex(kind, DIM, **options)
    index.build(gallery[:6_000])
    index.add(gallery[6_000:])
    assert index.ntotal == 8_000
    _, exact_rows = exact_search.exact_top_k(probes, gallery, 10)
    sims, ann_rows = index.top_k(probes, 10)
    assert _recall_at(exact_rows, ann_rows) >= 0.95
    # Returned similarities are the true inner products of the returned rows.
    np.testing.assert_allclose(sims, np.einsum("pd,pkd->pk", probes, gallery[ann_rows]), atol=1e-4)


def test_gallery_with_ivf_index_finds_identities(tmp_path):
    rng = np.random.default_rng(1)
    model = {"name": "n", "version": "1", "embedding_size": DIM, "fingerprint": "f"}
    path = str(tmp_path / "g.gallery")
    g = Gallery.open(path, model_info=model)
    centers = rng.normal(size=(300, DIM))
    for i, c in enumerate(centers):
        g.enroll(f"id{i}", _clustered(rng, 4, c[None], spread=0.2))
    probes = _clustered(rng, 300, centers, spread=0.2)
    exact = g.search(probes, k=3)
    ivf = Gallery.open(path, model_info=model, index="ivf", index_options={"nprobe": 16})
    approx = ivf.search(probes, k=3)
    top1 = np.mean([a[0].name == e[0].name for a, e in zip(approx, exact, strict=True)])
    assert top1 >= 0.98
    # Rows enrolled after the index was built are searchable through it.
    new = _clustered(rng, 1, rng.normal(size=(1, DIM)))
    ivf.enroll("newcomer", new)
    assert ivf.search(new, k=1)[0][0].name == "newcomer"


def test_missing_faiss_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(ImportError, match="requirements-ann.txt"):
        ann_index.FaissRowIndex("ivf", DIM)
    with pytest.raises(ValueError, match="kind"):
        monkeypatch.undo()
        ann_index.FaissRowIndex("lsh", DIM)
