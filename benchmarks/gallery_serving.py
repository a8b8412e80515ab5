"""How large a gallery can live inside a SavedModel (`export_gallery_model`)?

    python benchmarks/gallery_serving.py                          # D=512; 1k, 10k, 100k, 300k rows
    python benchmarks/gallery_serving.py --dim 128 --rows 1000,1000000

For each gallery size: export time, SavedModel size on disk, load time
(`tf.saved_model.load`, what a server pays per version), and the `identify` signature's
latency for one probe and per probe in a batch of 32 (median of `--repeats` calls after a
warm-up), plus the process's peak RSS. The embedding model is a tiny one (the search, not
the backbone, is what grows with the gallery). Rows are clustered unit vectors, 5 per
identity.
"""

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from machine import describe  # noqa: E402
from recognition_latency import clustered_rows  # noqa: E402

from tfface.export import export_gallery_model  # noqa: E402


def tiny_model(dim, size=32):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3)(inputs))
    return keras.Model(inputs, keras.layers.UnitNormalization()(keras.layers.Dense(dim)(x)))


def dir_size(path):
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def median_ms(fn, embeddings, repeats):
    fn(embeddings=embeddings)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(embeddings=embeddings)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dim", type=int, default=512, help="embedding size D")
    parser.add_argument("--rows", default="1000,10000,100000,300000", help="gallery sizes")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per figure")
    parser.add_argument("--k", type=int, default=5, help="identities returned per probe")
    args = parser.parse_args(argv)
    model = tiny_model(args.dim)
    probes = clustered_rows(160, args.dim, seed=1)
    print(describe())
    print(
        f"{'rows':>9s} {'ids':>8s} {'export s':>9s} {'size MB':>8s} {'load s':>7s} "
        f"{'1 probe ms':>11s} {'32-batch ms/probe':>18s} {'peak RSS MB':>12s}"
    )
    for rows in [int(r) for r in args.rows.split(",")]:
        gallery = clustered_rows(rows, args.dim)
        labels = [f"p{i // 5}" for i in range(rows)]
        base = tempfile.mkdtemp(prefix="gallery_serving_")
        t = time.perf_counter()
        path = export_gallery_model(model, gallery, base, labels=labels, k=args.k)
        export_s = time.perf_counter() - t
        del gallery, labels
        t = time.perf_counter()
        identify = tf.saved_model.load(path).signatures["identify"]
        load_s = time.perf_counter() - t
        one = tf.constant(probes[:1])
        batch = tf.constant(probes[:32])
        one_ms = median_ms(identify, one, args.repeats)
        batch_ms = median_ms(identify, batch, args.repeats) / 32
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{rows:9,d} {rows // 5:8,d} {export_s:9.1f} {dir_size(path) / 1e6:8.1f} "
            f"{load_s:7.1f} {one_ms:11.2f} {batch_ms:18.3f} {rss:12.0f}",
            flush=True,
        )
        shutil.rmtree(base, ignore_errors=True)
    print(describe())


if __name__ == "__main__":
    main()
