"""Which op runs Conv2D+BiasAdd+ReLU on this CPU, and does it keep a NaN input?

The trainer's NaN guard (BUILD_NOTES.md, Non-finite guard) checks the global gradient norm
because a finite loss proves nothing: TF's oneDNN fused Conv2D+BiasAdd+ReLU maps NaN to 0 in
the forward pass on some CPUs while the kernel gradient is still NaN. This prints, for the
current `TF_ENABLE_ONEDNN_OPTS`, the ops that actually ran (after Grappler's fusion) and what
they did with an all-NaN input:

    TF_ENABLE_ONEDNN_OPTS=1 python benchmarks/onednn_nan.py
    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/onednn_nan.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402


def probe(with_gradient):
    """Runs relu(bias_add(conv2d(x, w), b)) on NaN x; returns (ops, forward, kernel grad)."""
    with tf.compat.v1.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [2, 8, 8, 3])
        w = tf.compat.v1.placeholder(tf.float32, [3, 3, 3, 4])
        b = tf.compat.v1.placeholder(tf.float32, [4])  # not a constant: keeps the BiasAdd
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b))
        fetches = [y] + ([tf.gradients(tf.reduce_sum(y), w)[0]] if with_gradient else [])
        meta = tf.compat.v1.RunMetadata()
        feed = {
            x: np.full((2, 8, 8, 3), np.nan, np.float32),
            w: np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32),
            b: np.zeros(4, np.float32),
        }
        with tf.compat.v1.Session(graph=graph) as session:
            out = session.run(
                fetches,
                feed,
                options=tf.compat.v1.RunOptions(output_partition_graphs=True),
                run_metadata=meta,
            )
    ops = sorted(
        {n.op for g in meta.partition_graphs for n in g.node if "Conv" in n.op or "Relu" in n.op}
    )
    return ops, out[0], (out[1] if with_gradient else None)


def main():
    print(describe())
    print(f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset (on)')}")
    for with_gradient in (False, True):
        ops, forward, grad = probe(with_gradient)
        line = (
            f"  {'forward+gradient' if with_gradient else 'forward only':<16} ops={ops}: "
            f"NaN input -> output NaN {np.isnan(forward).mean():.0%}, "
            f"zero {(forward == 0).mean():.0%}"
        )
        if grad is not None:
            line += f"; kernel gradient NaN {np.isnan(grad).mean():.0%}"
        print(line)


if __name__ == "__main__":
    main()
