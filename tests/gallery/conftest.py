"""Every gallery backend, as one parametrised fixture: the contract tests
(`test_store_contract.py`) run the same checks on each.

- `sqlite`: the embedded default, exact search in TensorFlow (the reference).
- `faiss-ivf`, `faiss-hnsw`: the same SQLite file searched through a FAISS index
  (`index="ivf"` / `"hnsw"`): an index over the store's rows, not a store of its own.
- `milvus-lite`: the Milvus store on embedded Milvus (one file per session, one collection
  per gallery; a Milvus server runs the same code with another location).

A backend whose optional packages are missing is skipped with the install command.
"""

import importlib.util
import re

import pytest

from tfface.gallery import Gallery

_NEEDS = {
    "faiss-ivf": (("faiss",), "requirements-ann.txt"),
    "faiss-hnsw": (("faiss",), "requirements-ann.txt"),
    "milvus-lite": (("pymilvus", "milvus_lite"), "requirements-milvus.txt"),
}
# Small galleries: IVF then has a few lists and probes them all; HNSW explores the whole
# graph. Results must match the exact search, which is what the contract checks.
_INDEX = {
    "sqlite": {},
    "faiss-ivf": {"index": "ivf", "index_options": {"nprobe": 64}},
    "faiss-hnsw": {"index": "hnsw", "index_options": {"ef_search": 256}},
    "milvus-lite": {},
}
BACKENDS = list(_INDEX)


class Backend:
    """Locations and `Gallery.open` for one backend inside one test."""

    def __init__(self, kind, root, milvus_db, test_name):
        self.kind = kind
        self.root = root
        self.milvus_db = milvus_db
        self.test_name = re.sub(r"\W", "_", test_name)

    def location(self, name="g"):
        if self.kind == "milvus-lite":
            return f"milvus-lite:{self.milvus_db}#{self.test_name}_{name}"
        return str(self.root / "galleries" / f"{name}.gallery")

    def open(self, name="g", **kwargs):
        return Gallery.open(self.location(name), **_INDEX[self.kind], **kwargs)

    def import_(self, path, name, **kwargs):
        return Gallery.import_(path, self.location(name), **_INDEX[self.kind], **kwargs)

    def __repr__(self):
        return f"Backend({self.kind!r})"


@pytest.fixture(scope="session")
def milvus_db(tmp_path_factory):
    # Starting milvus-lite costs ~1 s: one file for the session, a collection per gallery.
    return str(tmp_path_factory.mktemp("milvus") / "galleries.db")


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, milvus_db):
    modules, requirements = _NEEDS.get(request.param, ((), None))
    if any(importlib.util.find_spec(m) is None for m in modules):
        pytest.skip(f"{request.param} needs: pip install -r {requirements}")
    return Backend(request.param, tmp_path, milvus_db, request.node.name)
