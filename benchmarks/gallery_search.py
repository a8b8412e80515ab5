"""Gallery search throughput: exact TF (float32, bfloat16) vs FAISS IndexFlatIP vs ANN.

    python benchmarks/gallery_search.py                          # 1M x 512, 1,000 probes
    python benchmarks/gallery_search.py --rows=200000 --hnsw     # also HNSW (slow build)

Data: clustered unit vectors shaped like face embeddings: `rows / per_identity`
identities, each a random centre with `per_identity` rows around it (cosine to the centre
about 0.75), probes fresh samples of random identities. Uniform random vectors would make
every ANN index look broken (no neighbour is much nearer than another).

Everything runs in one process, one method after the other on the same data, so the
ratios hold on a shared machine even when the absolute rates do not. Printed: probes/s,
recall@10 of each method against exact float32 rows, the identity hit rate (top-1 row
belongs to the probe's identity), and peak RSS.
"""

import argparse
import functools
import gc
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from clustered_vectors import clustered  # noqa: E402
from clustered_vectors import recall  # noqa: E402
from clustered_vectors import timed  # noqa: E402
from machine import describe  # noqa: E402

from tfface.gallery import ann_index  # noqa: E402
from tfface.gallery import exact_search  # noqa: E402


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def reset_peak_rss():
    """Resets VmHWM (Linux), so the next peak is that of one method alone."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_kb("VmRSS:") / 2**20


def peak_rss_gb():
    return _status_kb("VmHWM:") / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--per_identity", type=int, default=10)
    parser.add_argument("--chunk_rows", type=int, default=exact_search.DEFAULT_CHUNK_ROWS)
    parser.add_argument("--probe_batch", type=int, default=exact_search.DEFAULT_PROBE_BATCH)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--train_size", type=int, default=65536)
    parser.add_argument("--nprobes", default="4,8,16,32,64")
    parser.add_argument("--no_flat", action="store_true", help="skip FAISS IndexFlatIP")
    parser.add_argument("--no_ivf", action="store_true", help="skip FAISS IVF")
    parser.add_argument("--hnsw", action="store_true", help="also build HNSW (slow to build)")
    parser.add_argument("--hnsw_m", type=int, default=32)
    parser.add_argument("--hnsw_ef_construction", type=int, default=200)
    parser.add_argument("--hnsw_ef_search", default="32,64,128,256")
    args = parser.parse_args()

    print(describe())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  command: python {' '.join(sys.argv)}")
    sys.stdout.flush()
    t = time.perf_counter()
    gallery, owner, probes, probe_owner = clustered(
        args.rows, args.dim, args.per_identity, args.probes
    )
    print(
        f"data: {len(gallery):,} x {args.dim} clustered ({len(gallery) // args.per_identity:,} "
        f"identities), {args.probes} probes, k={args.k}; made in {time.perf_counter() - t:.1f} s; "
        f"gallery {gallery.nbytes / 2**30:.2f} GiB"
    )
    results = {}

    def report(name, seconds, rows, ref=None, base_rss=None):
        rate = args.probes / seconds
        rec = recall(rows, ref) if ref is not None else 1.0
        hit = float(np.mean(owner[rows[:, 0]] == probe_owner))
        results[name] = rate
        print(
            f"{name:<34} {rate:10.1f} probes/s  {seconds:8.2f} s  recall@{args.k} {rec:.4f}  "
            f"identity hit {hit:.4f}  peak RSS {peak_rss_gb():.2f} GiB"
            + (f" (+{peak_rss_gb() - base_rss:.2f} GiB while searching)" if base_rss else ""),
            flush=True,
        )

    # Exact TF, float32: the reference. One small warm-up traces the functions.
    matrix = tf.constant(gallery)

    def search(m):
        return exact_search.exact_top_k(
            probes, m, args.k, chunk_rows=args.chunk_rows, probe_batch=args.probe_batch
        )

    exact_search.exact_top_k(probes[:8], matrix[: args.chunk_rows * 2], args.k)
    base = reset_peak_rss()
    seconds, (_, exact_rows) = timed(functools.partial(search, matrix))
    report("exact TF float32", seconds, exact_rows, base_rss=base)
    block_mb = args.probe_batch * args.chunk_rows * 4 / 2**20
    print(
        f"  largest similarity block: [{args.probe_batch}, {args.chunk_rows}] = {block_mb:.0f} MiB"
    )
    del matrix
    gc.collect()

    matrix = tf.constant(gallery, tf.bfloat16)
    exact_search.exact_top_k(probes[:8], matrix[: args.chunk_rows * 2], args.k)
    base = reset_peak_rss()
    seconds, (_, rows) = timed(functools.partial(search, matrix))
    report("exact TF bfloat16 gallery", seconds, rows, exact_rows, base_rss=base)
    del matrix
    gc.collect()

    import faiss

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads")
    if not args.no_flat:
        flat = faiss.IndexFlatIP(args.dim)
        flat.add(gallery)
        base = reset_peak_rss()
        seconds, (_, rows) = timed(lambda: flat.search(probes, args.k))
        report("FAISS IndexFlatIP", seconds, rows, exact_rows, base_rss=base)
        del flat
        gc.collect()

    if not args.no_ivf:
        ivf(args, gallery, probes, exact_rows, results, report)

    if args.hnsw:
        index = ann_index.FaissRowIndex(
            "hnsw", args.dim, M=args.hnsw_m, ef_construction=args.hnsw_ef_construction
        )
        t = time.perf_counter()
        index.build(gallery)
        print(
            f"HNSW M={args.hnsw_m} efConstruction={args.hnsw_ef_construction}: built in "
            f"{time.perf_counter() - t:.1f} s"
        )
        for ef in map(int, args.hnsw_ef_search.split(",")):
            index._index.hnsw.efSearch = ef
            seconds, (_, rows) = timed(functools.partial(index.top_k, probes, args.k))
            report(f"FAISS HNSW efSearch={ef}", seconds, rows, exact_rows)
            speedup = results[f"FAISS HNSW efSearch={ef}"] / results["exact TF float32"]
            print(f"  speed-up over exact TF float32: {speedup:.1f}x")

    base = results["exact TF float32"]
    print(
        "ratios to exact TF float32: "
        + ", ".join(f"{k} {v / base:.2f}x" for k, v in results.items())
    )
    print(f"load after: {os.getloadavg()}")


def ivf(args, gallery, probes, exact_rows, results, report):
    index = ann_index.FaissRowIndex(
        "ivf", args.dim, nlist=args.nlist, train_size=args.train_size, nprobe=1
    )
    t = time.perf_counter()
    index.build(gallery)
    print(
        f"IVF nlist={args.nlist}: trained on {args.train_size:,} + added in "
        f"{time.perf_counter() - t:.1f} s"
    )
    for nprobe in map(int, args.nprobes.split(",")):
        index._index.nprobe = nprobe
        seconds, (_, rows) = timed(functools.partial(index.top_k, probes, args.k))
        report(f"FAISS IVF nprobe={nprobe}", seconds, rows, exact_rows)
        speedup = results[f"FAISS IVF nprobe={nprobe}"] / results["exact TF float32"]
        print(f"  speed-up over exact TF float32: {speedup:.1f}x")
    del index
    gc.collect()


if __name__ == "__main__":
    main()
