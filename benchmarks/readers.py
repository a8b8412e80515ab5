"""Random-access read rate of each reader vs the raw JPEG decode rate (issue #3).

Writes the same synthetic 112×112 JPEG faces as folder:, tfrecord: and rec:, then measures
images/s of `source.images_for_indices` on seeded random index batches (what the P×K sampler
feeds) against decoding the same JPEG bytes from memory in an equally parallel tf.data map.

    PYTHONPATH=. python benchmarks/readers.py [--images 4096] [--batch 256] [--rounds 3]

`--threads 0` leaves TF's thread pools at their defaults (all cores). Numbers are only
comparable on a quiet machine; the load at run time is printed.
"""

import argparse
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from tfface.data import load
from tfface.data.cli import synthetic_examples
from tfface.data.loader import write


def _rate(ds, num_images, warmup=2):
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    n = 0
    for images, _ in it:
        n += int(images.shape[0])
        if n >= num_images:
            break
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--identities", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--open_records",
        type=int,
        default=0,
        help="also time opening tfrecord:/rec: with N records, default vs check_images=False",
    )
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    per = args.images // args.identities
    examples = list(synthetic_examples(args.identities, per, args.image_size, seed=0))
    encoded = [e[0] for e in examples]
    print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}")
    print(
        f"{len(examples)} JPEGs of {args.image_size}x{args.image_size}, "
        f"mean {np.mean([len(e) for e in encoded]):.0f} bytes"
    )

    rng = np.random.default_rng(0)
    batches = rng.integers(0, len(examples), (10_000, args.batch), dtype=np.int64)
    total = 6 * len(examples)

    def decode(e):
        return tf.io.decode_jpeg(e, channels=3), tf.constant(0, tf.int64)

    pipelines = {
        "raw decode": tf.data.Dataset.from_tensor_slices(tf.constant(encoded))
        .repeat()
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(args.batch)
        .prefetch(2)
    }
    with tempfile.TemporaryDirectory() as tmp:
        specs = {
            "folder": (f"folder:{tmp}/f", f"folder:{tmp}/f"),
            "tfrecord": (f"tfrecord:{tmp}/t/x", f"tfrecord:{tmp}/t/x-*"),
            "rec": (f"rec:{tmp}/r", f"rec:{tmp}/r"),
        }
        for name, (out_spec, in_spec) in specs.items():
            write(iter(examples), out_spec, num_shards=4)
            start = time.perf_counter()
            source = load(in_spec)
            print(
                f"{name}: header scan on open {time.perf_counter() - start:.2f} s "
                f"for {source.num_examples} images"
            )
            ds = source.images_for_indices(tf.data.Dataset.from_tensor_slices(batches))
            pipelines[name] = ds.prefetch(2)
        # Rounds alternate between pipelines so that load from other processes hits all of
        # them alike; the best round of each is reported.
        best = {name: 0.0 for name in pipelines}
        for round_ in range(args.rounds):
            for name, ds in pipelines.items():
                rate = _rate(ds, total)
                best[name] = max(best[name], rate)
                print(f"round {round_} {name:10s} {rate:8.0f} img/s")
    raw_rate = best["raw decode"]
    for name, rate in best.items():
        print(f"best {name:10s} {rate:8.0f} img/s = {rate / raw_rate:6.1%} of raw decode")
    if args.open_records:
        _open_times(encoded, args.open_records)
    print(f"load average at end: {os.getloadavg()}")


def _open_times(encoded, n):
    """Seconds to open n-record tfrecord:/rec: sources with and without image checks."""
    examples = [(encoded[i % len(encoded)], i // 20, f"id{i // 20}") for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        for out_spec, in_spec in [
            (f"tfrecord:{tmp}/t/x", f"tfrecord:{tmp}/t/x-*"),
            (f"rec:{tmp}/r", f"rec:{tmp}/r"),
        ]:
            write(iter(examples), out_spec, num_shards=8)
            for check in (True, False):
                start = time.perf_counter()
                source = load(in_spec, check_images=check)
                took = time.perf_counter() - start
                print(
                    f"open {in_spec.split(':')[0]:8s} check_images={check!s:5s}: {took:6.2f} s "
                    f"for {source.num_examples} records ({source.num_examples / took:,.0f}/s)"
                )


if __name__ == "__main__":
    main()
