"""Training-step throughput of a registered backbone (forward + backward + SGD update).

    python -m tfface.models.benchmark --backbone small_cnn --image_size 64 --batch_size 128

Prints images/s over `--steps` timed steps after `--warmup` untimed ones (graph tracing and
allocation happen there). Threads follow TF's defaults unless `TF_NUM_INTRAOP_THREADS` /
`TF_NUM_INTEROP_THREADS` are set; the line printed says how many CPUs TF saw. The objective
is a mean squared embedding: it exercises the same forward/backward work as a real loss
without tying the figure to any head. Bad arguments exit 2 before TensorFlow is imported.
"""

import argparse
import json
import os
import time

import numpy as np

from tfface.models.registry import create_backbone
from tfface.models.registry import list_backbones


def measure(backbone, image_size, batch_size, embedding_dim=128, steps=20, warmup=3, seed=0):
    """Returns a dict with images/s and seconds/step for `steps` timed training steps."""
    if steps < 1 or warmup < 0:
        raise ValueError(
            f"`steps` must be >= 1 and `warmup` >= 0. Received: steps={steps}, warmup={warmup}"
        )
    from tfface import _startup

    _startup.import_tensorflow()  # without its start-up notices
    import keras
    import tensorflow as tf

    model = create_backbone(backbone, image_size=image_size, embedding_dim=embedding_dim)
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    rng = np.random.default_rng(seed)
    images = tf.constant(
        rng.uniform(-1.0, 1.0, size=(batch_size, image_size, image_size, 3)).astype("float32")
    )

    @tf.function(jit_compile=False)
    def step(x):
        with tf.GradientTape() as tape:
            emb = model(x, training=True)
            loss = tf.reduce_mean(tf.square(emb))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    for _ in range(warmup):
        step(images).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(images)
    loss.numpy()
    elapsed = time.perf_counter() - start
    return {
        "backbone": backbone,
        "image_size": image_size,
        "batch_size": batch_size,
        "params": int(model.count_params()),
        "steps": steps,
        "seconds_per_step": elapsed / steps,
        "images_per_second": batch_size * steps / elapsed,
        "cpu_count": os.cpu_count(),
        # 0 means TF's default (all cores); the environment variables override it.
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "TF_NUM_INTRAOP_THREADS": os.environ.get("TF_NUM_INTRAOP_THREADS"),
        "TF_NUM_INTEROP_THREADS": os.environ.get("TF_NUM_INTEROP_THREADS"),
        "load_average_1min": os.getloadavg()[0],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tfface.models.benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backbone", default="small_cnn", choices=list_backbones())
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--embedding_dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    for flag in ("image_size", "batch_size", "embedding_dim", "steps"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1. Received: --{flag}={getattr(args, flag)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0. Received: --warmup={args.warmup}")
    result = measure(
        args.backbone,
        args.image_size,
        args.batch_size,
        embedding_dim=args.embedding_dim,
        steps=args.steps,
        warmup=args.warmup,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
