"""Enrolment throughput into the embedded (SQLite) gallery and into milvus-lite.

    python benchmarks/gallery_enroll.py                     # 200k rows embedded, 20k milvus-lite
    python benchmarks/gallery_enroll.py --rows=1000000 --milvus_rows=0

Each `Gallery.enroll` call is one identity and one committed (fsync'ed) transaction, so
throughput depends on rows per call: measured at `--per_call` values (10 = a person with
ten photos; 1000 = a bulk import). Also printed: bytes on disk per row with 16 KiB and the
4 KiB default SQLite page, the time to load the file into the search copy (open + first
search), and milvus-lite's single-probe search latency.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402

from tfface.gallery import Gallery  # noqa: E402
from tfface.gallery import sqlite_store  # noqa: E402


def model(dim):
    return {"name": "bench", "version": "1", "embedding_size": dim, "fingerprint": "b"}


def enrol_all(location, rows, dim, per_call, seed=0):
    """Enrols `rows` random unit rows, `per_call` per identity; returns (seconds, gallery)."""
    rng = np.random.default_rng(seed)
    g = Gallery.open(location, model_info=model(dim))
    block = rng.standard_normal((max(per_call, 1000), dim), dtype=np.float32)
    t = time.perf_counter()
    for i in range(rows // per_call):
        x = np.roll(block, i, axis=0)[:per_call] + 1e-3 * i  # distinct rows, cheap to make
        g.enroll(f"person {i}", x)
    return time.perf_counter() - t, g


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--milvus_rows", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--per_call", default="10,1000")
    parser.add_argument(
        "--compare_pages",
        type=int,
        default=1,
        help="also write the bulk case with SQLite's default 4 KiB page (0: skip)",
    )
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    print(describe())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  command: python {' '.join(sys.argv)}")
    root = tempfile.mkdtemp(dir=args.dir, prefix="gallery_enroll_")
    try:
        for per_call in map(int, args.per_call.split(",")) if args.rows else ():
            for page in (16384, 4096) if per_call >= 1000 and args.compare_pages else (16384,):
                sqlite_store._PAGE_SIZE = page
                path = os.path.join(root, f"embedded_{per_call}_{page}.gallery")
                seconds, g = enrol_all(path, args.rows, args.dim, per_call)
                n = len(g)
                size = g.stats()["bytes_on_disk"]
                g.close()
                t = time.perf_counter()
                h = Gallery.open(path)
                h.search(np.ones(args.dim, np.float32), k=1)
                load = time.perf_counter() - t
                h.close()
                print(
                    f"embedded SQLite page={page:>5}  {per_call:>4} rows/call: {n:,} rows in "
                    f"{seconds:6.1f} s = {n / seconds:9.0f} rows/s ({n / per_call / seconds:7.1f} "
                    f"calls/s); {size / n:6.0f} bytes/row on disk; load for search {load:5.1f} s",
                    flush=True,
                )
                os.remove(path)
        sqlite_store._PAGE_SIZE = 16384
        if args.milvus_rows:
            try:
                import milvus_lite  # noqa: F401
            except ImportError:
                print("milvus-lite not installed: pip install -r requirements-milvus.txt")
                return
            for per_call in map(int, args.per_call.split(",")):
                db = os.path.join(root, f"milvus_{per_call}.db")
                seconds, g = enrol_all(f"milvus-lite:{db}", args.milvus_rows, args.dim, per_call)
                n = len(g)
                probe = np.random.default_rng(1).standard_normal((1, args.dim))
                g.search(probe, k=10)
                t = time.perf_counter()
                for _ in range(20):
                    g.search(probe, k=10)
                latency = (time.perf_counter() - t) / 20
                print(
                    f"milvus-lite              {per_call:>4} rows/call: {n:,} rows in "
                    f"{seconds:6.1f} s = {n / seconds:9.0f} rows/s; single-probe search "
                    f"{latency * 1000:6.1f} ms",
                    flush=True,
                )
                g.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
