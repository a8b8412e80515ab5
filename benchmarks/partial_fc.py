"""Partial FC vs the replicated head: step time and peak memory against the class count.

Each configuration (head, C, r) runs in a fresh subprocess on 2 logical CPU devices
(MirroredStrategy, 2 replicas), so its peak resident memory is its own. A step is the
head's share of a training step: ArcFace logits of the global batch's embeddings (random,
D = 512), cross-entropy, the gradients to the embeddings and the centres, and the
momentum-SGD update (Keras SGD on the replicated kernel for the full head; PartialFC's
sparse update for the sharded one). Reported per configuration: the median step time
after a warm-up step (wall clock, and the process CPU time of the step, summed over
threads: the better measure of work on a loaded machine), the process's peak RSS minus
its RSS before the head was built, and the head + optimizer bytes per replica (the
variables' sizes). The full head is run only where its projected memory fits in half
the available memory; otherwise the row says why it was not run. Last, the bytes per
replica for 2M classes on 8 GPUs (a projection from the same formulas, not measured).

    python benchmarks/partial_fc.py                       # C = 10k, 100k, 1M
    python benchmarks/partial_fc.py --classes 10000 --steps 3
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import machine  # noqa: E402

RATES = (1.0, 0.3, 0.1)
FLOAT = 4


def head_bytes(num_classes, dim, replicas, sample_rate=None, slots=1):
    """Head + optimizer-slot bytes per replica: the full head holds all C rows (and
    their slots) on every replica; Partial FC ⌈C/N⌉ rows."""
    rows = num_classes if sample_rate is None else -(-num_classes // replicas)
    return rows * dim * FLOAT * (1 + slots)


def _available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_one(head, num_classes, sample_rate, batch, dim, steps, seed):
    """Runs one configuration in this process; returns a dict of figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from tfface import layers
    from tfface.training.partial_fc import PartialFC
    from tfface.training.strategy import mirrored_strategy

    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])
    n = strategy.num_replicas_in_sync
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, dim)).astype(np.float32)
    y = rng.integers(0, num_classes, size=batch).astype(np.int32)
    local = batch // n
    dist = strategy.experimental_distribute_values_from_function
    xs = dist(lambda ctx: tf.constant(x[ctx.replica_id_in_sync_group * local :][:local]))
    ys = dist(lambda ctx: tf.constant(y[ctx.replica_id_in_sync_group * local :][:local]))
    y_all = tf.constant(y)
    before = machine.rss_mib()

    arcface = layers.ArcFace(num_classes, scale=64.0, margin=0.5)
    if head == "partial_fc":
        pfc = PartialFC(
            arcface,
            dim,
            strategy=strategy,
            sample_rate=sample_rate,
            global_batch_size=batch,
            optimizer="sgd",
            learning_rate=0.1,
            momentum=0.9,
            seed=seed,
        )

        def replica(x, y, y_all):
            var = pfc.shards[pfc.local_index()]
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss, _ = pfc(x, y, global_labels=y_all)
                scaled = loss / n
            gx, gw = tape.gradient(scaled, [x, var])
            pfc.apply(gw.values, gw.indices)
            return loss, tf.reduce_sum(gx)

        @tf.function
        def step(x, y, y_all):
            return strategy.run(replica, args=(x, y, y_all))

    else:
        with strategy.scope():
            arcface.build([(None, dim), (None,)])
            optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
            optimizer.build([arcface.kernel])

        def replica(x, y, y_all):
            with tf.GradientTape() as tape:
                tape.watch(x)
                logits = arcface([x, y], training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
                scaled = loss / n
            gx, gw = tape.gradient(scaled, [x, arcface.kernel])
            optimizer.apply_gradients([(gw, arcface.kernel)])
            return loss, tf.reduce_sum(gx)

        @tf.function
        def step(x, y, y_all):
            return strategy.run(replica, args=(x, y, y_all))

    times, cpu = [], []
    for i in range(steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        loss, _ = step(xs, ys, y_all)
        float(strategy.experimental_local_results(loss)[0])
        if i:  # the first step traces and compiles
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "head": head,
        "classes": num_classes,
        "rate": sample_rate,
        "step_s": statistics.median(times),
        "cpu_s": statistics.median(cpu),
        "peak_mib": peak - before,
        "bytes_per_replica": head_bytes(
            num_classes, dim, n, sample_rate if head == "partial_fc" else None
        ),
        "sampled_per_shard": pfc.num_sampled if head == "partial_fc" else num_classes,
        "loss": float(strategy.experimental_local_results(loss)[0]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--batch", type=int, default=128, help="global batch (2 replicas)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after a warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: head,C,r
    args = parser.parse_args(argv)
    if args.one:
        head, c, r = args.one.split(",")
        result = run_one(head, int(c), float(r), args.batch, args.dim, args.steps, args.seed)
        print("RESULT " + json.dumps(result))
        return 0
    if args.batch % 2:
        parser.error(f"--batch must be even (2 replicas). Received: --batch={args.batch}")

    print(machine.describe())
    print(f"global batch {args.batch}, D={args.dim}, 2 replicas (logical CPUs), {args.steps} steps")
    header = (
        f"{'head':<11} {'C':>9} {'r':>4} {'rows/shard':>10} {'step s':>8} {'cpu s':>8} "
        f"{'peak MiB':>9} {'head+opt MiB/replica':>21} {'vs full (wall/cpu)':>19}"
    )
    print(header)
    failures = 0
    for c in args.classes:
        full_time = full_cpu = None
        configs = [("full", 1.0)] + [("partial_fc", r) for r in args.rates]
        for head, r in configs:
            need = head_bytes(c, args.dim, 2) * 2 * 2 / 2**20  # 2 replicas, + gradients
            if head == "full" and need > _available_mib() / 2:
                print(
                    f"{head:<11} {c:>9} {'':>4} not run: needs ~{need:,.0f} MiB, "
                    f"{_available_mib():,.0f} MiB available"
                )
                continue
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                f"--one={head},{c},{r}",
                f"--batch={args.batch}",
                f"--dim={args.dim}",
                f"--steps={args.steps}",
                f"--seed={args.seed}",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode or not lines:
                failures += 1
                print(f"{head:<11} {c:>9} {r:>4} FAILED (exit {done.returncode})")
                print(done.stderr[-2000:])
                continue
            res = json.loads(lines[0][len("RESULT ") :])
            if head == "full":
                full_time, full_cpu = res["step_s"], res["cpu_s"]
            ratio = (
                f"{res['step_s'] / full_time:.2f}/{res['cpu_s'] / full_cpu:.2f}"
                if full_time
                else "-"
            )
            shown_r = "" if head == "full" else f"{r:g}"
            print(
                f"{head:<11} {c:>9} {shown_r:>4} {res['sampled_per_shard']:>10} "
                f"{res['step_s']:>8.3f} {res['cpu_s']:>8.3f} {res['peak_mib']:>9,.0f} "
                f"{res['bytes_per_replica'] / 2**20:>21,.0f} {ratio:>19}",
                flush=True,
            )
    c, n, d = 2_000_000, 8, 512
    print(
        f"\nProjection, C={c:,} x D={d} on {n} GPUs, momentum SGD (one slot): head + optimizer "
        f"per GPU: full {head_bytes(c, d, n) / 2**30:.2f} GiB, Partial FC "
        f"{head_bytes(c, d, n, 0.1) / 2**30:.2f} GiB (any r: the shard is kept whole); "
        f"logits per GPU at 128 images per GPU: full {128 * c * FLOAT / 2**30:.2f} GiB "
        f"(128 x C), Partial FC r=0.1 {128 * n * (c // n // 10) * FLOAT / 2**30:.2f} GiB "
        f"({128 * n} x C/{n}/10)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
