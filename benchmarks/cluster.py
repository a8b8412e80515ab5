"""Clustering faces by person (`tfface.eval.clustering`, what `tfface cluster` runs after the
embedder): purity, recall, pairwise F1 and time against the number of faces, for Chinese
whispers and DBSCAN.

    python benchmarks/cluster.py
    python benchmarks/cluster.py --faces 500 1000 2000 4000 --spread 1.0 --threshold 0.35

Embeddings are synthetic, so that the ground truth is known at every size: a random unit
centre per person in `--dim` dimensions (128, as dlib's model) plus Gaussian noise of norm
`--spread` (same-person cosine ~1/(1 + spread²): 0.5 at 1.0, against 0 ± 1/sqrt(dim) for
two people). People have log-uniform sizes in [1, `--max_per_person`] faces, as a photo
library does: a few people in many photos, many seen once or twice. A face seen alone
cannot be grouped with anyone, so a lone face in `unclustered` is right (it is its own
cluster in the scores). The times are the clustering alone (similarity graph included),
not detection or embedding (BENCHMARKS.md, recognition latency, has those per face).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402

from tfface.eval.clustering import cluster_embeddings  # noqa: E402
from tfface.eval.clustering import clustering_scores  # noqa: E402


def library(n_faces, dim, spread, max_per_person, seed):
    """(embeddings float32 [n_faces, dim], identities int [n_faces]), people interleaved."""
    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < n_faces:
        sizes.append(int(np.exp(rng.uniform(0, np.log(max_per_person + 1)))))
    sizes[-1] -= sum(sizes) - n_faces
    sizes = [s for s in sizes if s > 0]
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    identities = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[identities] + spread * rng.normal(size=(n_faces, dim)) / np.sqrt(dim)
    order = rng.permutation(n_faces)
    return x[order].astype(np.float32), identities[order]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--threshold", type=float, default=0.35)
    parser.add_argument("--max_per_person", type=int, default=30)
    parser.add_argument("--min_size", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if min(args.faces) < 2 or args.max_per_person < 1 or args.spread < 0:
        parser.error("--faces must be >= 2, --max_per_person >= 1, --spread >= 0")
    methods = ["chinese_whispers"]
    try:
        import sklearn  # noqa: F401

        methods.append("dbscan")
    except ImportError:
        print("scikit-learn is not installed: DBSCAN rows skipped", file=sys.stderr)
    print(describe())
    print(
        f"dim={args.dim} spread={args.spread} threshold={args.threshold} "
        f"max_per_person={args.max_per_person} min_size={args.min_size} seed={args.seed}"
    )
    header = (
        "| faces | people | people of >= 2 | method | purity | recall | pairwise P | "
        "pairwise R | pairwise F1 | clusters | unclustered | seconds |"
    )
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for n in args.faces:
        x, identities = library(n, args.dim, args.spread, args.max_per_person, args.seed)
        counts = np.bincount(identities)
        for method in methods:
            start = time.perf_counter()
            labels = cluster_embeddings(
                x, args.threshold, method=method, min_size=args.min_size, seed=args.seed
            )
            seconds = time.perf_counter() - start
            s = clustering_scores(identities, labels)
            print(
                f"| {n:,} | {len(counts):,} | {int(np.sum(counts >= 2)):,} | {method} | "
                f"{s['purity']:.4f} | {s['recall']:.4f} | {s['pairwise_precision']:.4f} | "
                f"{s['pairwise_recall']:.4f} | {s['pairwise_f1']:.4f} | {s['clusters']:,} | "
                f"{s['unclustered']:,} | {seconds:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
