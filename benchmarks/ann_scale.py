"""HNSW at gallery scale: build time, recall@10 and throughput against exact search.

NumPy + faiss-cpu only (no TensorFlow), so it runs wherever a wheel of faiss-cpu does; the
index is the one `Gallery.open(path, index="hnsw")` builds (`IndexHNSWFlat`, inner
product). Exact search is FAISS `IndexFlatIP` on the same machine and thread count; on the
2-core machine of BENCHMARKS.md, tfface's exact TF search ran at 1.75× IndexFlatIP, which
converts the ratios printed here into ratios to tfface's exact search.

    python benchmarks/ann_scale.py --rows 1000000 --search_threads 2,16
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clustered_vectors import clustered  # noqa: E402
from clustered_vectors import recall  # noqa: E402
from clustered_vectors import timed  # noqa: E402
from machine import describe  # noqa: E402


def main():
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--per_identity", type=int, default=10)
    parser.add_argument("--hnsw_m", type=int, default=16)
    parser.add_argument("--hnsw_ef_construction", type=int, default=64)
    parser.add_argument("--hnsw_ef_search", default="32,64,128,256")
    parser.add_argument("--search_threads", default="2", help="thread counts to search with")
    args = parser.parse_args()

    print(describe())
    print(f"faiss {faiss.__version__}; command: python {' '.join(sys.argv)}", flush=True)
    t = time.perf_counter()
    gallery, _, probes, _ = clustered(args.rows, args.dim, args.per_identity, args.probes)
    print(f"data: {len(gallery):,} x {args.dim} clustered, made in {time.perf_counter() - t:.1f} s")

    flat = faiss.IndexFlatIP(args.dim)
    flat.add(gallery)
    hnsw = faiss.IndexHNSWFlat(args.dim, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.hnsw_ef_construction
    faiss.omp_set_num_threads(os.cpu_count())
    t = time.perf_counter()
    hnsw.add(gallery)
    print(
        f"HNSW M={args.hnsw_m} efConstruction={args.hnsw_ef_construction}: built in "
        f"{time.perf_counter() - t:.1f} s on {os.cpu_count()} threads",
        flush=True,
    )
    for threads in map(int, args.search_threads.split(",")):
        faiss.omp_set_num_threads(threads)
        seconds, (_, exact_rows) = timed(lambda: flat.search(probes, args.k), repeats=2)
        flat_rate = args.probes / seconds
        print(f"[{threads} threads] exact IndexFlatIP: {flat_rate:,.1f} probes/s", flush=True)
        for ef in map(int, args.hnsw_ef_search.split(",")):
            hnsw.hnsw.efSearch = ef
            seconds, (_, rows) = timed(lambda: hnsw.search(probes, args.k), repeats=2)
            rate = args.probes / seconds
            print(
                f"[{threads} threads] HNSW efSearch={ef}: {rate:,.1f} probes/s "
                f"({rate / flat_rate:.1f}x IndexFlatIP), recall@{args.k} "
                f"{recall(rows, exact_rows):.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
