"""tfface.gallery: persistent enrolment and 1:N search of face embeddings.

    from tfface.gallery import Gallery, GalleryModelMismatchError
    g = Gallery.open("people.gallery", model_info={"name": "mobilefacenet", "version": "1",
                                                   "embedding_size": 128, "fingerprint": "..."})
    g.enroll("alice", embeddings, sources=["a1.jpg", "a2.jpg"])    # -> rows added
    g.search(probes, k=5, by="max")      # -> [[Match(name, similarity), ...] per probe]
    g.remove(name); g.rename(old, new); g.identities(); len(g); g.stats()
    g.export("people.npz"); Gallery.import_("people.npz", "copy.gallery")
    g.rows(); g.to_arrays()              # every row; (names, float32 [N, D])
    g.model_info                         # mismatching model_info -> GalleryModelMismatchError

Modules (one concept each):
- `gallery`: the `Gallery` API (input checks, normalisation, names as data, model record).
- `store`: the `Store` contract every backend implements, written out.
- `registry`: which store a location names (prefixes), for `Gallery.open` and the CLI.
- `model_info`: the model record a gallery keeps, the mismatch check, `weights_fingerprint`.
- `sqlite_store`: the embedded default, one SQLite file (WAL, synchronous=FULL).
- `mirrored_store`: the base of stores searched through an in-memory mirror (SQLite).
- `vector_cache`: that mirror, identity max/mean over a row index.
- `row_index`: the row index contract; `exact_search` (chunked exact top-k in TF, the
  reference for every index) and `ann_index` (FAISS IVF / HNSW for galleries past ~1M
  rows, `requirements-ann.txt`) implement it.
- `milvus_store`: Milvus backend through pymilvus; milvus-lite or a server, same code
  (`requirements-milvus.txt`).

Names load on first access, and TensorFlow only at the first search: listing, editing and
exporting a gallery need none (`tfface gallery list` starts in a fraction of a second).
"""

from tfface._lazy import lazy_getattr

_EXPORTS = {
    "Gallery": "gallery",
    "GalleryError": "model_info",
    "GalleryModelMismatchError": "model_info",
    "GalleryNotFoundError": "model_info",
    "Match": "gallery",
    "Store": "store",
    "check_embeddings": "gallery",
    "check_name": "gallery",
    "exact_top_k": "exact_search",
    "weights_fingerprint": "model_info",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
