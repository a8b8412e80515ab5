"""The embedded gallery store: one SQLite file holding names, metadata and embeddings.

The default backend: any gallery location without a prefix is a path to one of these
files. It keeps rows only; searches run on an in-memory mirror (`MirroredStore`: exact in
TensorFlow, or FAISS with `index="ivf"` / `"hnsw"`). Each `add`, `remove` and `rename` is
one transaction (all or nothing).

Why SQLite (stdlib, zero set-up): one file, transactions, and a write-ahead log that lets
other processes read while one writes. Settings and what they buy:
- `journal_mode=WAL`: readers never block the writer and see the last committed state.
- `synchronous=FULL`: the WAL is fsync'ed at every commit, so an `enroll` that returned is
  on disk and survives a crash or `kill -9` (NORMAL could lose the last commits on power
  loss).
- `page_size=16384` (set before the first table): a 512-D float32 vector is a 2 KiB blob;
  16 KiB pages about halve the file against the 4 KiB default (BUILD_NOTES.md).
- One transaction per `add` call: a bulk enrolment is all-or-nothing, and one killed
  mid-way leaves every earlier call intact.

Schema:
    meta(key, value)                 model_info JSON, settings JSON, generation counters
    identities(id, name UNIQUE)      names are data: never used as paths
    embeddings(id, identity, source, digest, vector, metadata)
        UNIQUE(identity, digest): the same vector twice for one identity is one row
        UNIQUE(identity, source) where source is not NULL: re-enrolling a file is a no-op

`generation` grows at every committed write and `reset_generation` at every write that
removes or renames (so a reader's in-memory copy must be rebuilt rather than extended).
"""

import contextlib
import json
import os
import sqlite3

import numpy as np

from tfface.gallery.mirrored_store import MirroredStore
from tfface.gallery.model_info import GalleryError
from tfface.gallery.model_info import GalleryNotFoundError

_PAGE_SIZE = 16384
_BUSY_TIMEOUT_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    identity INTEGER NOT NULL REFERENCES identities(id),
    source TEXT,
    digest BLOB NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT,
    UNIQUE (identity, digest)
);
CREATE UNIQUE INDEX IF NOT EXISTS embeddings_source
    ON embeddings(identity, source) WHERE source IS NOT NULL;
CREATE INDEX IF NOT EXISTS embeddings_identity ON embeddings(identity);
"""


class SQLiteStore(MirroredStore):
    """A gallery file on local disk. See the module docstring for the format.

    Args:
        path: the gallery file (created with its parent folders when missing).
        create: allow creating a new file.
        **search_options: how searches run (`MirroredStore`: `index`, `dtype`,
            `index_options`, `chunk_rows`, `probe_batch`).
    """

    prefixes = ()  # the default: every location no other store claims
    location_is_path = True

    def __init__(self, path, create=True, **search_options):
        self.check_options(search_options, "an embedded gallery")
        super().__init__(**search_options)
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            raise GalleryError(f"Gallery path is a directory, not a file: {self.path}")
        exists = os.path.exists(self.path)
        if not exists and not create:
            raise GalleryNotFoundError(f"No gallery at {self.path}")
        if not exists:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            self._db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            if not exists:
                self._db.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM meta").fetchone()
        except sqlite3.DatabaseError as e:
            raise GalleryError(f"{self.path} is not a tfface gallery (SQLite said: {e})") from e

    @classmethod
    def open(cls, location, *, create=True, **options):
        return cls(location, create=create, **options)

    @property
    def location(self):
        return self.path

    def close(self):
        self._db.close()

    @contextlib.contextmanager
    def _write(self, reset=False):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute(
                "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE "
                "SET value = CAST(value AS INTEGER) + 1"
            )
            if reset:
                self._db.execute(
                    "INSERT INTO meta SELECT 'reset_generation', value FROM meta "
                    "WHERE key = 'generation' ON CONFLICT(key) DO UPDATE SET value = excluded.value"
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # --- model record ---------------------------------------------------------------
    def read_model_info(self):
        row = self._db.execute("SELECT value FROM meta WHERE key = 'model_info'").fetchone()
        return None if row is None else json.loads(row[0])

    def write_model_info(self, info):
        """Records `info` once; returns what is stored (another process may have won)."""
        with self._write():
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('model_info', ?)", (json.dumps(info),)
            )
        return self.read_model_info()

    # --- settings -------------------------------------------------------------------
    def read_settings(self):
        row = self._db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        return {} if row is None else json.loads(row[0])

    def update_settings(self, changes):
        """Read, merge and write in one transaction: concurrent updates never lose a key.
        Not through `_write`: settings are not rows, so no generation changes."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            settings = self.read_settings()
            for key, value in changes.items():
                if value is None:
                    settings.pop(key, None)
                else:
                    settings[key] = value
            self._db.execute(
                "INSERT INTO meta VALUES ('settings', ?) ON CONFLICT(key) DO UPDATE "
                "SET value = excluded.value",
                (json.dumps(settings),),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return settings

    def generations(self):
        rows = dict(
            self._db.execute(
                "SELECT key, CAST(value AS INTEGER) FROM meta "
                "WHERE key IN ('generation', 'reset_generation')"
            ).fetchall()
        )
        return rows.get("generation", 0), rows.get("reset_generation", 0)

    # --- writes ---------------------------------------------------------------------
    def add(self, name, vectors, digests, sources, metadata):
        """Adds rows for identity `name` in one transaction; returns how many were new."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO identities(name) VALUES (?)", (name,))
            (identity,) = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO embeddings(identity, source, digest, vector, metadata) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    (
                        identity,
                        src,
                        dig,
                        np.ascontiguousarray(vec, dtype="<f4").tobytes(),
                        None if meta is None else json.dumps(meta),
                    )
                    for vec, dig, src, meta in zip(vectors, digests, sources, metadata, strict=True)
                ),
            )
            return db.total_changes - before

    def remove(self, name):
        with self._write(reset=True) as db:
            row = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise GalleryError(f"No identity named {name!r} in gallery {self.path}")
            n = db.execute("DELETE FROM embeddings WHERE identity = ?", row).rowcount
            db.execute("DELETE FROM identities WHERE id = ?", row)
            return n

    def rename(self, old, new):
        with self._write(reset=True) as db:
            if db.execute("SELECT 1 FROM identities WHERE name = ?", (new,)).fetchone():
                raise GalleryError(f"Identity {new!r} already exists in gallery {self.path}")
            if (
                db.execute("UPDATE identities SET name = ? WHERE name = ?", (new, old)).rowcount
                != 1
            ):
                raise GalleryError(f"No identity named {old!r} in gallery {self.path}")

    # --- reads ----------------------------------------------------------------------
    def identities(self):
        return [
            (name, count)
            for name, count in self._db.execute(
                "SELECT i.name, count(e.id) FROM identities i JOIN embeddings e "
                "ON e.identity = i.id GROUP BY i.id ORDER BY i.name"
            )
        ]

    def count(self):
        return self._db.execute("SELECT count(*) FROM embeddings").fetchone()[0]

    def names(self, after_id=0):
        """(identity id, name) pairs with id > after_id."""
        return self._db.execute(
            "SELECT id, name FROM identities WHERE id > ? ORDER BY id", (after_id,)
        ).fetchall()

    @contextlib.contextmanager
    def snapshot(self):
        """Every read inside sees one committed state (a WAL read transaction)."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def vectors(self, dim, after_id=0, batch=65536):
        """Yields (row ids int64 [b], identity ids int64 [b], vectors float32 [b, dim]) for
        rows with id > after_id, in id order, `batch` rows at a time (one SELECT: one
        consistent state; use `snapshot()` to agree with other reads)."""
        cur = self._db.execute(
            "SELECT id, identity, vector FROM embeddings WHERE id > ? ORDER BY id",
            (after_id,),
        )
        while rows := cur.fetchmany(batch):
            ids, owners, blobs = zip(*rows, strict=True)
            vecs = np.frombuffer(b"".join(blobs), "<f4").reshape(-1, dim)
            yield np.array(ids, np.int64), np.array(owners, np.int64), vecs

    def rows(self):
        """Yields (name, source, vector float32, metadata) for export, in enrolment order."""
        for name, src, vec, meta in self._db.execute(
            "SELECT i.name, e.source, e.vector, e.metadata FROM embeddings e "
            "JOIN identities i ON e.identity = i.id ORDER BY e.id"
        ):
            yield name, src, np.frombuffer(vec, "<f4"), None if meta is None else json.loads(meta)

    def file_size(self):
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))
