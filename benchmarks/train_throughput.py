"""Training throughput: images/s of the whole training step (forward, head, backward,
all-reduce, optimizer update) with `tfface.training.Trainer`, on whatever devices TF sees.

One row per combination of the axes below; each combination builds a fresh Trainer with
`--strategy=auto` (MirroredStrategy over all GPUs when there are several), runs one step
(tracing, and XLA compilation with --jit on), `--warmup` untimed steps, then `--steps`
timed steps on fixed random batches already on the device, fetching the loss after every
step (so each step is finished before the next is timed). `skipped` counts timed steps
not applied (mixed_float16 overflowing its starting loss scale): those cost less. The
global batch is `--batch` × the number of replicas, as arcface_torch's per-GPU batch.

Axes (comma-separated lists):
    --backbones   iresnet50, iresnet100, mobilefacenet (any tfface backbone)
    --heads       full (a margin head over all --classes); another head is one more
                  entry of HEADS below: the TrainConfig fields it sets
    --precisions  float32, mixed_float16
    --jit         off, on
    --accumulate  accumulate_steps values (1: none)
    --clip        clip_norm values (none: no clipping)

Usage:
    python benchmarks/train_throughput.py                              # the full grid
    python benchmarks/train_throughput.py --backbones mobilefacenet --precisions float32 \\
        --jit off --batch 8 --steps 3                                   # one CPU row
    python benchmarks/train_throughput.py --backbones iresnet50 --batch 128 --classes 93431 \\
        --precisions mixed_float16 --jit off,on                         # per-GPU, as arcface_torch
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import gc  # noqa: E402
import itertools  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The classification heads to compare: name -> TrainConfig fields over the common ones.
# A Partial FC head is one more entry here (e.g. "pfc0.1": {"partial_fc": 0.1}) once
# TrainConfig has that field.
HEADS = {"full": {"loss": "arcface"}}
PRECISIONS = ("float32", "mixed_float16")


def _list(text, allowed=None, convert=str, name="value"):
    values = [convert(v.strip()) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"empty {name} list")
    if allowed is not None:
        for v in values:
            if v not in allowed:
                raise argparse.ArgumentTypeError(
                    f"{name} {v!r} is not one of {', '.join(map(str, allowed))}"
                )
    return values


def _clip_value(text):
    return None if text == "none" else float(text)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbones", default="iresnet50,iresnet100,mobilefacenet")
    p.add_argument("--heads", default="full")
    p.add_argument("--precisions", default="float32,mixed_float16")
    p.add_argument("--jit", default="off,on")
    p.add_argument("--accumulate", default="1")
    p.add_argument("--clip", default="none")
    p.add_argument("--batch", type=int, default=8, help="images per replica per step")
    p.add_argument("--classes", type=int, default=10_000, help="identities of the head")
    p.add_argument("--image_size", type=int, default=112)
    p.add_argument("--embedding_dim", type=int, default=512)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    p.add_argument("--steps", type=int, default=3, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps after the first")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        args.heads = _list(args.heads, HEADS, name="head")
        args.precisions = _list(args.precisions, PRECISIONS, name="precision")
        args.jit = [v == "on" for v in _list(args.jit, ("off", "on"), name="jit")]
        args.accumulate = _list(args.accumulate, convert=int, name="accumulate")
        args.clip = _list(args.clip, convert=_clip_value, name="clip")
        args.backbones = _list(args.backbones, name="backbone")
    except (argparse.ArgumentTypeError, ValueError) as e:
        p.error(str(e))
    for name in ("batch", "classes", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1. Received: {getattr(args, name)}")
    if args.batch % 2:
        p.error(f"--batch must be even (P identities × 2 images). Received: {args.batch}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0. Received: {args.warmup}")
    return args


class Batches(list):
    """Fixed global batches that tell the Trainer the class count."""

    def __init__(self, batches, num_classes):
        super().__init__(batches)
        self.num_classes = num_classes
        self.num_examples = sum(int(b[1].shape[0]) for b in batches)


def make_batches(count, size, image_size, num_classes, seed):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        ids = rng.choice(num_classes, size=size // 2, replace=False)
        labels = np.repeat(ids, 2).astype(np.int64)
        images = rng.integers(0, 256, (size, image_size, image_size, 3)).astype(np.float32)
        batches.append((tf.constant(images), tf.constant(labels)))
    return Batches(batches, num_classes)


def make_config(args, backbone, head, precision, jit, accumulate, clip, num_replicas, model_dir):
    """The row's `TrainConfig`; raises ValueError for a combination the trainer refuses."""
    from tfface.training.schema import TrainConfig
    from tfface.training.trainer import check_replicas

    global_batch = args.batch * num_replicas
    config = TrainConfig(
        **HEADS[head],
        data="synthetic",
        backbone=backbone,
        image_size=args.image_size,
        embedding_dim=args.embedding_dim,
        identities_per_batch=global_batch // 2,
        images_per_identity=2,
        mixed_precision=precision == "mixed_float16",
        jit=jit,
        accumulate_steps=accumulate,
        clip_norm=clip,
        optimizer=args.optimizer,
        learning_rate=0.01,
        lr_schedule="constant",
        steps=1 + args.warmup + args.steps,
        seed=args.seed,
        model_dir=model_dir,
        evaluate=False,
        export=False,
    )
    config.validate()
    check_replicas(config, num_replicas)
    return config


def run_one(args, config, num_replicas):
    """Builds a Trainer for one row and times it; returns the row's figures."""
    import tensorflow as tf

    from tfface.training.trainer import STEP_APPLIED
    from tfface.training.trainer import Trainer

    global_batch = args.batch * num_replicas
    data = make_batches(
        min(4, 1 + args.warmup + args.steps), global_batch, args.image_size, args.classes, 0
    )
    trainer = Trainer(config, dataset=data, log=lambda *a: None)
    gpu = bool(tf.config.list_logical_devices("GPU"))
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")

    def step(i):
        images, labels = data[i % len(data)]
        loss, _ = trainer.train_step(images, labels)
        value = float(loss)  # waits for the step
        return value, int(trainer.last_status) != STEP_APPLIED

    t0 = time.perf_counter()
    step(0)
    first = time.perf_counter() - t0
    for i in range(args.warmup):
        step(1 + i)
    times, skipped = [], 0
    for i in range(args.steps):
        t0 = time.perf_counter()
        loss, not_applied = step(1 + args.warmup + i)
        times.append(time.perf_counter() - t0)
        # mixed_float16: the first steps may overflow the starting loss scale (2^15) and be
        # skipped (no update), as LossScaleOptimizer does; counted so that rows say so.
        skipped += not_applied
    peak = None
    if gpu:
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30
    params = sum(int(v.numpy().size) for v in trainer.model.trainable_variables)
    median = statistics.median(times)
    return {
        "first_s": first,
        "step_ms": 1000 * median,
        "images_per_s": global_batch / median,
        "loss": loss,
        "peak_gib": peak,
        "params_m": params / 1e6,
        "skipped": skipped,
    }


def main(argv=None):
    args = parse_args(argv)
    from tfface import _startup

    _startup.import_tensorflow()  # without its CUDA start-up notices on a CPU machine
    import keras
    import tensorflow as tf
    from machine import describe

    from tfface import models
    from tfface.training.strategy import make_strategy

    unknown = [b for b in args.backbones if b not in models.list_backbones()]
    if unknown:
        print(f"unknown backbone(s) {unknown}; one of {models.list_backbones()}", file=sys.stderr)
        return 2
    print(describe(), flush=True)
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    num_replicas = make_strategy("auto").num_replicas_in_sync
    print(f"devices: {', '.join(d.name for d in devices)}; replicas: {num_replicas}")
    print(
        f"batch {args.batch}/replica (global {args.batch * num_replicas}), {args.classes} "
        f"classes, {args.image_size}×{args.image_size}, D={args.embedding_dim}, "
        f"{args.optimizer}; 1 first + {args.warmup} warm-up + {args.steps} timed steps per row"
    )
    header = (
        f"{'backbone':<14}{'head':<8}{'precision':<15}{'jit':<5}{'acc':>4}{'clip':>6}"
        f"{'params M':>10}{'first s':>9}{'step ms':>10}{'images/s':>10}{'peak GiB':>10}"
        f"{'skipped':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = 0
    grid = itertools.product(
        args.backbones, args.heads, args.precisions, args.jit, args.accumulate, args.clip
    )
    with tempfile.TemporaryDirectory() as tmp:
        for backbone, head, precision, jit, accumulate, clip in grid:
            model_dir = os.path.join(tmp, str(rows))
            name = f"{backbone:<14}{head:<8}{precision:<15}{'on' if jit else 'off':<5}"
            name += f"{accumulate:>4}{'-' if clip is None else clip:>6}"
            row = (backbone, head, precision, jit, accumulate, clip)
            try:  # before any weights: a refused combination costs nothing
                config = make_config(args, *row, num_replicas, model_dir)
            except ValueError as e:
                print(f"{name}  refused: {e}", flush=True)
                continue
            try:
                r = run_one(args, config, num_replicas)
            finally:
                # Frees the row's model before the next one is built.
                keras.backend.clear_session()
                gc.collect()
            rows += 1
            peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
            print(
                f"{name}{r['params_m']:>10.2f}{r['first_s']:>9.1f}"
                f"{r['step_ms']:>10.1f}{r['images_per_s']:>10.2f}{peak:>10}{r['skipped']:>9}",
                flush=True,
            )
    if not rows:
        print("no configuration ran", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
