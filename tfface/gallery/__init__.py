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
- `gallery`: the `Gallery` API and its contract (normalisation, idempotence, names as data).
- `model_info`: the model record a gallery keeps, the mismatch check, `weights_fingerprint`.
- `sqlite_store`: the embedded default, one SQLite file (WAL, synchronous=FULL).
- `vector_cache`: the in-memory copy that embedded searches run on, identity max/mean.
- `exact_search`: chunked exact top-k in TF, the reference for every index.
- `ann_index`: FAISS IVF / HNSW for galleries past ~1M rows (`requirements-ann.txt`).
- `milvus_store`: Milvus backend through pymilvus; milvus-lite or a server, same code
  (`requirements-milvus.txt`).
"""

from tfface.gallery.exact_search import exact_top_k
from tfface.gallery.gallery import Gallery
from tfface.gallery.gallery import Match
from tfface.gallery.gallery import check_embeddings
from tfface.gallery.gallery import check_name
from tfface.gallery.model_info import GalleryError
from tfface.gallery.model_info import GalleryModelMismatchError
from tfface.gallery.model_info import weights_fingerprint

__all__ = [
    "Gallery",
    "GalleryError",
    "GalleryModelMismatchError",
    "Match",
    "check_embeddings",
    "check_name",
    "exact_top_k",
    "weights_fingerprint",
]
