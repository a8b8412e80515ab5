"""Partial FC checkpoint save: the local concatenation against the multi-worker all-gather.

A multi-worker save all-gathers every worker's shards and slots into the canonical
[C, D] layout in chunks of rows (`PartialFC.gather_chunk_bytes`); one machine concatenates
its local shards. Both are run here on 2 logical CPU devices (MirroredStrategy, 2
replicas; the gather is forced with `canonical(force_gather=True)`), each in a fresh
subprocess so that its peak resident memory is its own. Reported per mode: the wall time
of `canonical()` (median of the repeats after a warm-up call) and of one checkpoint write,
and the process's peak RSS minus its RSS before the first save, against the table size
(C × D × 4 bytes for the centres and each slot).

    python benchmarks/partial_fc_save.py                    # C = 100k, D = 512, momentum
    python benchmarks/partial_fc_save.py --classes 20000 --repeats 2
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import machine  # noqa: E402

MODES = ("concat", "gather")


def _child(mode, classes, dim, repeats, chunk_mib):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfface import layers
    from tfface.training.partial_fc import PartialFC
    from tfface.training.strategy import mirrored_strategy

    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])
    pfc = PartialFC(layers.ArcFace(classes), dim, strategy=strategy, global_batch_size=128, seed=0)
    pfc.gather_chunk_bytes = chunk_mib << 20
    force = mode == "gather"
    before = machine.rss_mib()
    times = []
    for _ in range(repeats + 1):  # the first call traces the gather
        t = time.perf_counter()
        out = pfc.canonical(force_gather=force)
        out["centres"].numpy()
        times.append(time.perf_counter() - t)
        del out
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        if force:
            state = pfc.checkpoint_state
            state._serialize_to_tensors = lambda: pfc.canonical(force_gather=True)
        tf.train.Checkpoint(head=pfc.checkpoint_state).write(os.path.join(d, "ckpt"))
        write_s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": mode,
        "canonical_s": statistics.median(times[1:]),
        "write_s": write_s,
        "peak_mib": peak - before,
        "table_mib": classes * dim * 4 / 2**20,
        "tensors": 1 + len(pfc.slots[0]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk_mib", type=int, default=256)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.classes, args.dim, args.repeats, args.chunk_mib)))
        return
    print(machine.describe())
    print(
        f"C={args.classes} D={args.dim} momentum SGD, 2 logical CPU devices, "
        f"gather chunks of {args.chunk_mib} MiB"
    )
    print("| save | canonical() s | checkpoint write s | peak RSS MiB | table MiB (× tensors) |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        command = [sys.executable, __file__, "--child", mode]
        command += ["--classes", str(args.classes), "--dim", str(args.dim)]
        command += ["--repeats", str(args.repeats), "--chunk_mib", str(args.chunk_mib)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"| {r['mode']} | {r['canonical_s']:.3f} | {r['write_s']:.3f} | "
            f"{r['peak_mib']:.0f} | {r['table_mib']:.0f} (× {r['tensors']}) |"
        )


if __name__ == "__main__":
    main()
