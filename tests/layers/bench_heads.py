"""Micro-benchmark of the center update and the ArcFace head (not collected by pytest).

    python -m tests.layers.bench_heads [--threads N]

Prints milliseconds per step (median of 20 after 3 warm-up steps) for
- `CenterLoss` training calls at C = 1,000 / 100,000 / 500,000 (B = 256, D = 512): the
  update is O(B log B + B·D), so the time should not grow with C;
- an `ArcFace` forward + backward at C = 10,000 (B = 256, D = 512), float32.
"""

import argparse
import time

import numpy as np
import tensorflow as tf

from tfface.layers import ArcFace
from tfface.layers import CenterLoss


def _median_ms(fn, repeats=20, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--threads", type=int, default=0, help="TF intra-op threads (0: TF default)"
    )
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(0)
    batch, dim = 256, 512
    features = tf.constant(rng.normal(size=(batch, dim)).astype("float32"))

    for classes in (1_000, 100_000, 500_000):
        labels = tf.constant(rng.integers(0, classes, size=(batch,)).astype("int64"))
        layer = CenterLoss(num_classes=classes)
        step = tf.function(lambda f, y, layer=layer: layer([f, y], training=True))
        ms = _median_ms(lambda step=step, y=labels: step(features, y).numpy())
        print(f"CenterLoss update  C={classes:>9,}  B={batch} D={dim}: {ms:8.2f} ms/step")

    classes = 10_000
    labels = tf.constant(rng.integers(0, classes, size=(batch,)).astype("int64"))
    head = ArcFace(num_classes=classes)
    head.build(features.shape)

    @tf.function
    def head_step(f, y):
        with tf.GradientTape() as tape:
            tape.watch(f)
            logits = head([f, y], training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        return tape.gradient(loss, [f, head.kernel.value])

    ms = _median_ms(lambda: [g.numpy() for g in head_step(features, labels)])
    print(f"ArcFace fwd+bwd    C={classes:>9,}  B={batch} D={dim}: {ms:8.2f} ms/step")


if __name__ == "__main__":
    main()
