"""Semi-hard triplet mining: tfface's O(B²) search against tensorflow-addons' [B², B] tile.

For each batch size B, forward+backward of the semi-hard loss (L2, D=128, P×K labels with
K=4, unit embeddings) runs under tf.function in a FRESH subprocess: one warm-up call
(trace + first run), then the median of --runs timed calls. Peak memory is the growth of
the subprocess's peak RSS (getrusage ru_maxrss) from just before the first loss call (TF
imported, inputs built) to the end: what the loss itself needed on top of the runtime.
"cpu s" is the median process CPU time (all threads) per call: less sensitive than wall
time to other processes sharing the cores (wall ≈ cpu s / cores on a quiet machine).
(tf.config.experimental.get_memory_info does not report CPU memory, so RSS is used.)

tfa runs in the same way with the TF 2.15 interpreter from $TFFACE_TFA_PYTHON (default
/work/main/.venv-tfa/bin/python) via tools/tfa_parity_worker.py, capped with RLIMIT_AS so
that a batch that does not fit fails ("did not fit") instead of exhausting the machine;
B >= --tfa-max-batch (default 2048; it needs > 24 GiB there) is skipped.

    python benchmarks/triplet_mining.py                   # B = 256 1024 2048 4096
    python benchmarks/triplet_mining.py --batches 256 1024 --runs 5
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TFA_WORKER = ROOT / "tools" / "tfa_parity_worker.py"
DEFAULT_TFA_PYTHON = "/work/main/.venv-tfa/bin/python"


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_ours(batch, dim, runs, seed):
    """Runs inside the fresh subprocess; prints one JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(ROOT))
    from tfface.losses import triplet_semihard_loss

    rng = np.random.default_rng(seed)
    labels = tf.constant(np.repeat(np.arange(max(1, batch // 4)), 4)[:batch].astype("int32"))
    emb = rng.normal(size=(batch, dim)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    embeddings = tf.constant(emb)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = triplet_semihard_loss(labels, x)
        return loss, tape.gradient(loss, x)

    baseline = _peak_rss_bytes()
    step(embeddings)[1].numpy()
    times, cpu_times = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        step(embeddings)[1].numpy()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    print(
        json.dumps(
            {
                "batch": batch,
                "seconds": float(np.median(times)),
                "cpu_seconds": float(np.median(cpu_times)),
                "peak_rss_growth_bytes": _peak_rss_bytes() - baseline,
            }
        )
    )


def _available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemAvailable missing from /proc/meminfo")


def _subprocess(cmd, mem_cap_bytes, timeout):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem_cap_bytes, mem_cap_bytes))

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit if mem_cap_bytes else None,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        return None, f"did not fit / failed (rc={proc.returncode}: {tail[0][:120]})"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024, 2048, 4096])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5, help="timed calls per B (median)")
    parser.add_argument("--tfa-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tfa-max-batch", type=int, default=2048, help="skip tfa at B >= this")
    parser.add_argument(
        "--tfa-mem-gib",
        type=float,
        default=20.0,
        help="RLIMIT_AS for the tfa subprocess (lowered to MemAvailable - 2 GiB)",
    )
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_ours(args.batch, args.dim, args.runs, args.seed)
        return

    tfa_python = os.environ.get("TFFACE_TFA_PYTHON", DEFAULT_TFA_PYTHON)
    if not os.path.exists(tfa_python):
        print(f"# tfa interpreter not found at {tfa_python}: tfa columns skipped")
        tfa_python = None
    print(f"# semi-hard triplet loss, L2, D={args.dim}, forward+backward under tf.function")
    print(f"# load average at start: {os.getloadavg()}  cpus: {os.cpu_count()}")
    header = (
        f"{'B':>6} | {'tfface s':>9} | {'cpu s':>7} | {'tfface MB':>9} | "
        f"{'tfa s':>9} | {'tfa MB':>9} | speed-up"
    )
    print(header)
    print("-" * len(header))
    for batch in args.batches:
        ours, err = _subprocess(
            [
                sys.executable,
                __file__,
                "--worker",
                "--batch",
                str(batch),
                "--dim",
                str(args.dim),
                "--runs",
                str(args.runs),
                "--seed",
                str(args.seed),
            ],
            None,
            args.timeout,
        )
        ours_s = (
            f"{ours['seconds']:9.3f} | {ours['cpu_seconds']:7.3f}"
            if ours
            else f"{'fail':>9} | {'':>7}"
        )
        ours_mb = f"{ours['peak_rss_growth_bytes'] / 2**20:9.0f}" if ours else err
        if tfa_python is None:
            tfa, tfa_note = None, "not run"
        elif batch >= args.tfa_max_batch:
            tfa, tfa_note = None, f"skipped (B >= --tfa-max-batch={args.tfa_max_batch})"
        else:
            cap = int(min(args.tfa_mem_gib * 2**30, _available_bytes() - 2 * 2**30))
            tfa, tfa_note = _subprocess(
                [
                    tfa_python,
                    str(TFA_WORKER),
                    "bench",
                    "--batch",
                    str(batch),
                    "--dim",
                    str(args.dim),
                    "--runs",
                    str(args.tfa_runs),
                    "--seed",
                    str(args.seed),
                ],
                cap,
                args.timeout,
            )
            if tfa is None:
                tfa_note = f"{tfa_note}; RLIMIT_AS {cap / 2**30:.1f} GiB"
        if tfa and ours:
            row = (
                f"{tfa['seconds']:9.3f} | {tfa['peak_rss_growth_bytes'] / 2**20:9.0f} | "
                f"{tfa['seconds'] / ours['seconds']:7.1f}x"
            )
        else:
            row = tfa_note
        print(f"{batch:>6} | {ours_s} | {ours_mb} | {row}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
