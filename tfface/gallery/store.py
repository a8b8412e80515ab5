"""`Store`: the contract every gallery backend implements. `Gallery` is written against it
alone, and `tests/gallery/test_store_contract.py` runs the same checks on every backend.

Who does what. `Gallery` checks and prepares everything a store receives: names
(`check_name`), vectors (right size, finite, non-zero, then L2-normalised float32),
sources and metadata (one per row; strings / JSON-ready dicts), the de-duplication digest
of each vector, `k` and `by`, and the model record (`check_model_info`). A store keeps
rows and answers questions about them; it never sees invalid input and never compares
models.

What every store provides, and its semantics:
- Location. `prefixes`: the location prefixes it claims (`"milvus://"`...); the one store
  with no prefixes takes every other location (a plain path). `location_is_path`: the
  location is one local file, which a command line can check before opening it.
  `open(location, create=..., **options)` builds the store; an option it does not take
  raises `ValueError` naming it. `location`: where it is, for messages.
- Model record. `read_model_info()` is the recorded model dict, or None when the location
  holds no gallery yet; `write_model_info(info)` records `info` unless a record exists
  (the first writer wins) and returns what is recorded. `Gallery.open` raises
  `GalleryNotFoundError` for a location without a record when `create=False`, and
  `GalleryModelMismatchError` when the caller's model disagrees with the record.
- Settings. `read_settings()` is a JSON-ready dict of the gallery's settings ({} when
  none were written), e.g. the open-set threshold `tfface calibrate` fitted for it;
  `update_settings(changes)` merges `changes` into them (a key set to None is deleted),
  keeps them across close and reopen, and returns the new dict. Settings are not rows:
  they change no count, search or generation.
- Enrolment. `add(name, vectors, digests, sources, metadata)` adds rows for one identity
  and returns how many were new. A row is a duplicate, and skipped, when its identity
  already has a row with the same digest (the same direction) or the same non-None source,
  including an earlier row of the same call.
- Removal and rename. `remove(name)` deletes an identity and all its rows and returns the
  row count; `rename(old, new)` moves every row (vector, source, metadata) to `new`. Both
  raise `GalleryError` ("No identity named ...") for a missing identity; `rename` raises
  it ("... already exists") when `new` is taken. A removed name can be enrolled again.
- Reads. `identities()`: [(name, row count)] of identities with rows, sorted by name;
  `count()`: the number of rows; `rows()`: every row as (name, source or None, float32
  unit vector [D], metadata dict or None), in enrolment order; `file_size()`: bytes on
  local disk, or None for a server.
- Search. `search(probes, k, by)`: probes are unit float32 [m, D]; for each probe a list
  of at most `k` (name, cosine similarity) pairs, best first, each identity once. An
  identity scores its best row (`by="max"`) or the mean cosine over its rows (`by="mean"`,
  the dot product with the mean of its unit rows). An empty gallery answers [] per probe.
- Visibility and persistence. A write that returned is seen by the next read or search
  through any store open on the same location, and by a store opened later (close and
  reopen keeps the model record, identities, rows and search results).
- Threads. A store belongs to the thread that opened it.

How atomic a write is depends on what the backend offers, and each backend's docstring
says it: SQLite commits each `add`/`remove`/`rename` as one transaction; Milvus has no
multi-row transactions.

Two ways to provide `search`. A backend with its own vector search (Milvus) implements
it, and refuses `index=`/`dtype=`. A backend that only stores rows (SQLite) derives from
`MirroredStore`, which searches an in-memory mirror of the rows through a `RowIndex`:
exact (TensorFlow, the reference) or FAISS IVF / HNSW. FAISS is therefore not a store:
it keeps no names, sources or model record and nothing on disk; it is an index over a
store's rows, rebuilt from the store when a gallery is opened, and any mirrored store
gets it by `index="ivf"` / `"hnsw"`.

Adding a backend: subclass `Store` (or `MirroredStore`), give it `prefixes`, and list it
in `tfface.gallery.registry.STORES`; the contract tests then run on it too.
"""

import abc


class Store(abc.ABC):
    """A gallery backend; see the module docstring for the contract."""

    prefixes = ()
    location_is_path = False

    @classmethod
    @abc.abstractmethod
    def open(cls, location, *, create=True, **options):
        """Builds the store for `location` (`create=False`: never create anything)."""

    @property
    @abc.abstractmethod
    def location(self):
        """Where the gallery lives, for messages and `Gallery.stats`."""

    @abc.abstractmethod
    def close(self):
        """Releases the connection; the store is unusable afterwards."""

    @abc.abstractmethod
    def read_model_info(self):
        """The recorded model dict, or None when the location holds no gallery yet."""

    @abc.abstractmethod
    def write_model_info(self, info):
        """Records `info` unless a record exists; returns the recorded one."""

    @abc.abstractmethod
    def read_settings(self):
        """The gallery's settings, a JSON-ready dict ({} when none were written)."""

    @abc.abstractmethod
    def update_settings(self, changes):
        """Merges `changes` into the settings (None deletes a key); returns the new dict."""

    @abc.abstractmethod
    def add(self, name, vectors, digests, sources, metadata):
        """Adds the new rows of identity `name`; returns how many were new."""

    @abc.abstractmethod
    def remove(self, name):
        """Deletes identity `name` and its rows; returns the row count."""

    @abc.abstractmethod
    def rename(self, old, new):
        """Moves every row of `old` to `new`."""

    @abc.abstractmethod
    def identities(self):
        """[(name, row count)] sorted by name."""

    @abc.abstractmethod
    def count(self):
        """The number of rows."""

    @abc.abstractmethod
    def rows(self):
        """Yields (name, source, float32 unit vector [D], metadata) in enrolment order."""

    @abc.abstractmethod
    def file_size(self):
        """Bytes on local disk, or None for a server."""

    @abc.abstractmethod
    def search(self, probes, k, by):
        """Per unit probe, up to `k` (name, similarity) pairs, best first."""
