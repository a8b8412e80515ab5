"""Milvus backend: the same `Gallery` API on a Milvus collection, embedded or distributed.

Only the location changes between development and a cluster:

    Gallery.open("milvus-lite:/data/people.db", model_info=...)        # embedded, one process
    Gallery.open("milvus://milvus.internal:19530/people", model_info=...)  # server / cluster
    Gallery.open("https://HOST:443/people", model_info=..., token="user:password")

`milvus-lite:PATH[#COLLECTION]` runs Milvus inside this process on a local file (collection
`tfface_gallery` unless named); `milvus://HOST:PORT/COLLECTION` connects over gRPC (plain
`http://` / `https://HOST:PORT/COLLECTION` too; `token=` or the `MILVUS_TOKEN` environment
variable authenticates). Needs `pip install -r requirements-milvus.txt`.

Layout, for a collection `C`:
- `C`: one row per embedding: auto id, `name`, `name_key` (SHA-1 of the name: filters
  only ever contain hex, so a name is never parsed as an expression), `source`,
  `digest` (the same de-duplication key as the embedded store), `metadata` (JSON text),
  `vector` (FLAT index, inner product; consistency level Strong, so an enrolment is
  visible to the next search). The recorded model is the collection property
  `tfface.model_info`, the settings (`Store.read_settings`) the property `tfface.settings`
  (JSON; updated read-modify-write, so two concurrent updates can lose one).
- `C_means`: one row per identity: `name_key` (primary), `name`, `count`, `vector` = the
  mean of its unit embeddings, kept up to date on every write, for `by="mean"`.
`by="max"` is Milvus' grouping search on `name_key` (Milvus 2.4 or later): the best row of
each of the top-k identities, exact with the FLAT index.

Differences from the embedded store, by Milvus' design: there are no multi-row
transactions, so a `rename` or `remove` interrupted half-way can leave rows under both
names (run it again); concurrent writers to one identity can race on its mean row;
milvus-lite holds a file lock, so only one process opens a milvus-lite file at a time
(a Milvus server has no such limit).
"""

import hashlib
import json
import os
import re

import numpy as np

from tfface.gallery.model_info import GalleryError
from tfface.gallery.model_info import GalleryNotFoundError
from tfface.gallery.store import Store

_DEFAULT_COLLECTION = "tfface_gallery"
_MODEL_PROPERTY = "tfface.model_info"
_SETTINGS_PROPERTY = "tfface.settings"
_COLLECTION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
_MAX_TEXT = 65535
_BATCH = 1000
_PAGE = 16384  # Milvus' largest query result window


def _key(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def parse_location(location):
    """Returns (uri, collection) for a `milvus-lite:` / `milvus://` / `http(s)://` location."""
    if location.startswith("milvus-lite:"):
        rest = location[len("milvus-lite:") :]
        path, _, collection = rest.partition("#")
        if not path.endswith(".db"):
            raise ValueError(
                f"A milvus-lite location is 'milvus-lite:PATH.db[#COLLECTION]' (milvus-lite "
                f"needs a .db file name). Received: location={location!r}"
            )
        uri = os.path.abspath(os.path.expanduser(path))
    else:
        scheme, _, rest = location.partition("://")
        host, _, collection = rest.partition("/")
        if not host or not collection:
            raise ValueError(
                "A Milvus server location is 'milvus://HOST:PORT/COLLECTION' (or http:// / "
                f"https://). Received: location={location!r}"
            )
        uri = f"{'https' if scheme == 'https' else 'http'}://{host}"
    collection = collection or _DEFAULT_COLLECTION
    if not _COLLECTION_RE.match(collection):
        raise ValueError(
            "A Milvus collection name is letters, digits and underscores, not starting with a "
            f"digit. Received: collection={collection!r}"
        )
    return uri, collection


class MilvusStore(Store):
    """A gallery in a Milvus collection. See the module docstring.

    Args:
        uri: a milvus-lite `.db` path or a server URI (`http://host:19530`).
        collection: the collection name (`C`; `C_means` is created beside it).
        token: Milvus credentials (`"user:password"` or an API key), if the server needs them.
    """

    prefixes = ("milvus://", "milvus-lite:", "http://", "https://")

    def __init__(self, uri, collection, token=None):
        try:
            from pymilvus import MilvusClient
        except ImportError as e:
            raise ImportError(
                "The Milvus gallery backend needs pymilvus (and milvus-lite for local files): "
                "pip install -r requirements-milvus.txt"
            ) from e
        self.uri = uri
        self.collection = collection
        self.means = collection + "_means"
        kwargs = {"token": token} if token else {}
        self._client = MilvusClient(uri, **kwargs)
        self._dim = None
        if self._client.has_collection(collection):
            self._load()

    @classmethod
    def open(
        cls,
        location,
        *,
        create=True,
        token=None,
        index="exact",
        dtype="float32",
        index_options=None,
        **options,
    ):
        """The store at `location` (see `parse_location`); `token` defaults to the
        `MILVUS_TOKEN` environment variable. A collection brings its own index, so `index`,
        `dtype` and `index_options` (the mirrored stores' options) must keep their defaults."""
        if options:
            raise ValueError(f"Unknown options for a Milvus gallery: {sorted(options)}")
        if index != "exact" or dtype != "float32" or index_options:
            raise ValueError(
                "index=, dtype= and index_options= apply to the embedded backend; a Milvus "
                f"collection brings its own index. Received: index={index!r}, dtype={dtype!r}"
            )
        uri, collection = parse_location(location)
        if location.startswith("milvus-lite:"):
            if not create and not os.path.exists(uri):
                raise GalleryNotFoundError(f"No gallery at {location} (no file {uri})")
            os.makedirs(os.path.dirname(uri), exist_ok=True)
        return cls(uri, collection, token=token or os.environ.get("MILVUS_TOKEN"))

    @property
    def location(self):
        return f"{self.uri}#{self.collection}"

    def close(self):
        self._client.close()

    def file_size(self):
        if os.path.exists(self.uri):
            if os.path.isfile(self.uri):
                return os.path.getsize(self.uri)
            return sum(
                os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(self.uri) for f in fs
            )
        return None  # a server: ask the server

    def _load(self):
        desc = self._client.describe_collection(self.collection)
        for field in desc["fields"]:
            if field["name"] == "vector":
                self._dim = int(field["params"]["dim"])
        self._client.load_collection(self.collection)
        if self._client.has_collection(self.means):
            self._client.load_collection(self.means)

    # --- model record ---------------------------------------------------------------
    def read_model_info(self):
        if not self._client.has_collection(self.collection):
            return None
        props = self._client.describe_collection(self.collection).get("properties", {})
        value = props.get(_MODEL_PROPERTY)
        return None if value is None else json.loads(value)

    def write_model_info(self, info):
        from pymilvus import DataType
        from pymilvus import MilvusClient

        dim = info["embedding_size"]
        if not self._client.has_collection(self.collection):
            schema = MilvusClient.create_schema(auto_id=True)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("name", DataType.VARCHAR, max_length=4096)
            schema.add_field("name_key", DataType.VARCHAR, max_length=40)
            schema.add_field("source", DataType.VARCHAR, max_length=_MAX_TEXT)
            schema.add_field("digest", DataType.VARCHAR, max_length=32)
            schema.add_field("metadata", DataType.VARCHAR, max_length=_MAX_TEXT)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            index = self._client.prepare_index_params()
            index.add_index("vector", index_type="FLAT", metric_type="IP")
            self._client.create_collection(
                self.collection, schema=schema, index_params=index, consistency_level="Strong"
            )
        if not self._client.has_collection(self.means):
            schema = MilvusClient.create_schema(auto_id=False)
            schema.add_field("name_key", DataType.VARCHAR, is_primary=True, max_length=40)
            schema.add_field("name", DataType.VARCHAR, max_length=4096)
            schema.add_field("count", DataType.INT64)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            index = self._client.prepare_index_params()
            index.add_index("vector", index_type="FLAT", metric_type="IP")
            self._client.create_collection(
                self.means, schema=schema, index_params=index, consistency_level="Strong"
            )
        if self.read_model_info() is None:
            self._client.alter_collection_properties(
                self.collection, properties={_MODEL_PROPERTY: json.dumps(info)}
            )
        self._load()
        return self.read_model_info()

    # --- settings -------------------------------------------------------------------
    def read_settings(self):
        if not self._client.has_collection(self.collection):
            return {}
        props = self._client.describe_collection(self.collection).get("properties", {})
        value = props.get(_SETTINGS_PROPERTY)
        return {} if value is None else json.loads(value)

    def update_settings(self, changes):
        settings = self.read_settings()
        for key, value in changes.items():
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
        text = json.dumps(settings)
        if len(text) > _MAX_TEXT:
            raise ValueError(
                f"A Milvus gallery keeps settings up to {_MAX_TEXT} characters of JSON. "
                f"Received: {len(text)}"
            )
        self._client.alter_collection_properties(
            self.collection, properties={_SETTINGS_PROPERTY: text}
        )
        return settings

    # --- helpers --------------------------------------------------------------------
    def _all(self, collection, filter, fields):
        # One query answers the common case (an identity's few rows); the iterator, which
        # pages through any number of rows, only when that query comes back full.
        rows = self._client.query(collection, filter=filter, output_fields=fields, limit=_PAGE)
        if len(rows) < _PAGE:
            yield from rows
            return
        it = self._client.query_iterator(
            collection, batch_size=_BATCH, filter=filter, output_fields=fields
        )
        try:
            while batch := it.next():
                yield from batch
        finally:
            it.close()

    def _mean_row(self, key):
        rows = self._client.get(self.means, ids=[key], output_fields=["name", "count", "vector"])
        return rows[0] if rows else None

    # --- writes ---------------------------------------------------------------------
    def add(self, name, vectors, digests, sources, metadata):
        key = _key(name)
        have_digests, have_sources = set(), set()
        for row in self._all(self.collection, f'name_key == "{key}"', ["digest", "source"]):
            have_digests.add(row["digest"])
            have_sources.add(row["source"])
        new_rows, new_vectors = [], []
        for vec, dig, src, meta in zip(vectors, digests, sources, metadata, strict=True):
            dig = dig.hex()
            meta = "" if meta is None else json.dumps(meta)
            src_text = "" if src is None else src
            if len(src_text) > _MAX_TEXT or len(meta) > _MAX_TEXT:
                raise ValueError(
                    f"A Milvus gallery keeps sources and metadata up to {_MAX_TEXT} characters. "
                    f"Received: {len(src_text)} and {len(meta)}"
                )
            if dig in have_digests or (src is not None and src_text in have_sources):
                continue
            have_digests.add(dig)
            if src is not None:
                have_sources.add(src_text)
            new_rows.append(
                {
                    "name": name,
                    "name_key": key,
                    "source": src_text,
                    "digest": dig,
                    "metadata": meta,
                    "vector": vec.tolist(),
                }
            )
            new_vectors.append(vec)
        if not new_rows:
            return 0
        for i in range(0, len(new_rows), _BATCH):
            self._client.insert(self.collection, new_rows[i : i + _BATCH])
        old = self._mean_row(key)
        total = np.sum(new_vectors, axis=0, dtype=np.float64)
        count = len(new_vectors)
        if old is not None:
            total += np.asarray(old["vector"], np.float64) * old["count"]
            count += old["count"]
        self._client.upsert(
            self.means,
            [
                {
                    "name_key": key,
                    "name": name,
                    "count": count,
                    "vector": (total / count).astype(np.float32).tolist(),
                }
            ],
        )
        return len(new_rows)

    def _count_of(self, key):
        row = self._mean_row(key)
        return 0 if row is None else int(row["count"])

    def remove(self, name):
        key = _key(name)
        n = self._count_of(key)
        if n == 0:
            raise GalleryError(f"No identity named {name!r} in gallery {self.location}")
        self._client.delete(self.collection, filter=f'name_key == "{key}"')
        self._client.delete(self.means, ids=[key])
        return n

    def rename(self, old, new):
        old_key, new_key = _key(old), _key(new)
        if self._count_of(new_key):
            raise GalleryError(f"Identity {new!r} already exists in gallery {self.location}")
        mean = self._mean_row(old_key)
        if mean is None:
            raise GalleryError(f"No identity named {old!r} in gallery {self.location}")
        fields = ["source", "digest", "metadata", "vector"]
        rows = [
            {k: r[k] for k in fields} | {"name": new, "name_key": new_key}
            for r in self._all(self.collection, f'name_key == "{old_key}"', fields)
        ]
        for i in range(0, len(rows), _BATCH):
            self._client.insert(self.collection, rows[i : i + _BATCH])
        mean.update({"name": new, "name_key": new_key})
        self._client.upsert(self.means, [mean])
        self._client.delete(self.collection, filter=f'name_key == "{old_key}"')
        self._client.delete(self.means, ids=[old_key])

    # --- reads ----------------------------------------------------------------------
    def identities(self):
        return sorted(
            (r["name"], int(r["count"]))
            for r in self._all(self.means, "", ["name", "count"])
            if r["count"] > 0
        )

    def count(self):
        if not self._client.has_collection(self.collection):
            return 0
        res = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def rows(self):
        for r in self._all(self.collection, "", ["name", "source", "metadata", "vector"]):
            yield (
                r["name"],
                r["source"] or None,
                np.asarray(r["vector"], np.float32),
                json.loads(r["metadata"]) if r["metadata"] else None,
            )

    def search(self, probes, k, by):
        data = [p.tolist() for p in probes]
        params = {"metric_type": "IP"}
        if by == "max":
            res = self._client.search(
                self.collection,
                data=data,
                limit=k,
                group_by_field="name_key",
                output_fields=["name"],
                search_params=params,
            )
        else:
            res = self._client.search(
                self.means, data=data, limit=k, output_fields=["name"], search_params=params
            )
        out = []
        for hits in res:
            ranked = sorted(
                ((h["entity"]["name"], float(h["distance"])) for h in hits), key=lambda t: -t[1]
            )
            out.append(ranked[:k])
        return out
