"""Runs tensorflow-addons 0.23 triplet losses inside .venv-tfa (TF 2.15) for tfface checks.

Never imported by tfface: tests and benchmarks start it with the .venv-tfa interpreter.

  parity IN.npz OUT.npz
      IN holds, for case i, `labels_{i}` [B] int and `embeddings_{i}` [B, D] float32, and
      `margin` (a scalar). OUT gets `{i}/{loss}/{metric}/value` and `.../grad` (d loss /
      d embeddings) for loss in semihard, hard, hard_soft and metric in L2, squared-L2,
      angular. All cases run in this one process (importing TF 2.15 costs seconds).

  bench --batch B --dim D --runs R --seed S
      Times forward+backward of tfa.losses.triplet_semihard_loss (L2) under tf.function
      and prints one JSON line: median seconds and peak RSS growth in bytes.
"""

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_addons as tfa  # noqa: E402

METRICS = ("L2", "squared-L2", "angular")


def _loss_fns(margin, metric):
    return {
        "semihard": lambda y, x: tfa.losses.triplet_semihard_loss(
            y, x, margin=margin, distance_metric=metric
        ),
        "hard": lambda y, x: tfa.losses.triplet_hard_loss(
            y, x, margin=margin, soft=False, distance_metric=metric
        ),
        "hard_soft": lambda y, x: tfa.losses.triplet_hard_loss(
            y, x, margin=margin, soft=True, distance_metric=metric
        ),
    }


def parity(in_path, out_path):
    data = np.load(in_path)
    margin = float(data["margin"])
    num_cases = len([k for k in data.files if k.startswith("labels_")])
    out = {}
    for i in range(num_cases):
        labels = tf.constant(data[f"labels_{i}"])
        embeddings = tf.constant(data[f"embeddings_{i}"])
        for metric in METRICS:
            for name, fn in _loss_fns(margin, metric).items():
                with tf.GradientTape() as tape:
                    tape.watch(embeddings)
                    value = fn(labels, embeddings)
                grad = tape.gradient(value, embeddings)
                out[f"{i}/{name}/{metric}/value"] = value.numpy()
                out[f"{i}/{name}/{metric}/grad"] = grad.numpy()
    np.savez(out_path, **out)


def _peak_rss_bytes():
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench(batch, dim, runs, seed):
    rng = np.random.default_rng(seed)
    num_ids = max(1, batch // 4)
    labels = tf.constant(np.repeat(np.arange(num_ids), 4)[:batch].astype("int32"))
    emb = rng.normal(size=(batch, dim)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    embeddings = tf.constant(emb)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tfa.losses.triplet_semihard_loss(labels, x)
        return loss, tape.gradient(loss, x)

    # Baseline after TF import and a tiny traced call: what remains is the loss's own peak.
    baseline = _peak_rss_bytes()
    step(embeddings)[1].numpy()  # warm-up (trace + first run)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step(embeddings)[1].numpy()
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "batch": batch,
                "seconds": float(np.median(times)),
                "peak_rss_growth_bytes": _peak_rss_bytes() - baseline,
            }
        )
    )


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity")
    p.add_argument("inputs")
    p.add_argument("outputs")
    b = sub.add_parser("bench")
    b.add_argument("--batch", type=int, required=True)
    b.add_argument("--dim", type=int, default=128)
    b.add_argument("--runs", type=int, default=3)
    b.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "parity":
        parity(args.inputs, args.outputs)
    else:
        bench(args.batch, args.dim, args.runs, args.seed)


if __name__ == "__main__":
    main(sys.argv[1:])
