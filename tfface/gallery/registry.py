"""Which `Store` a gallery location names: the one prefix table that `Gallery.open` and the
`tfface` command line both read.

    milvus://HOST:PORT/COLLECTION, http(s)://HOST:PORT/COLLECTION, milvus-lite:PATH.db
        -> MilvusStore
    any other location (a plain path)  -> SQLiteStore

Each store declares its own `prefixes`; the one with none is the default. Importing this
module imports no backend library (pymilvus, faiss) and no TensorFlow.
"""

import os

from tfface.gallery.milvus_store import MilvusStore
from tfface.gallery.sqlite_store import SQLiteStore

STORES = (MilvusStore, SQLiteStore)


def check_stores(stores):
    """Raises ValueError unless no prefix is claimed twice and exactly one store (the
    default, for plain paths) claims none."""
    seen = {}
    for store in stores:
        for prefix in store.prefixes:
            if prefix in seen:
                raise ValueError(
                    f"Gallery location prefix {prefix!r} is claimed by both "
                    f"{seen[prefix].__name__} and {store.__name__}."
                )
            seen[prefix] = store
    defaults = [s.__name__ for s in stores if not s.prefixes]
    if len(defaults) != 1:
        raise ValueError(
            f"Exactly one gallery store must take plain paths (no prefixes). Received: {defaults}"
        )


check_stores(STORES)


def store_class(location, stores=STORES):
    """The `Store` subclass for `location` (a string or path-like)."""
    location = os.fspath(location)
    for store in stores:
        if store.prefixes and location.startswith(store.prefixes):
            return store
    return next(s for s in stores if not s.prefixes)


def prefixes(stores=STORES):
    """Every location prefix, for help texts and messages."""
    return tuple(p for s in stores for p in s.prefixes)
