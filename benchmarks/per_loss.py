"""Runs `python train.py --loss=X` with each loss's default settings and prints one table.

    python benchmarks/per_loss.py                       # every loss, sequentially
    python benchmarks/per_loss.py --losses=arcface,cosface

The runs are the head table's (`tfface.training.heads.runs()`: every loss, one run per
triplet mining). Each run evaluates held-out synthetic identities with the LFW protocol
(6,000 pairs, 10 folds) and writes runs/per_loss/<name>/eval/summary.json; the table
compares the trained network with the raw-pixel and untrained-network baselines measured on
the same pairs.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's tfface, whose train.py the runs use
from tfface.training import heads  # noqa: E402

# {run name: train.py flags}: every loss of the head table at its defaults, one run per
# triplet mining (the same table as experiments/loss_zoo.py).
RUNS = heads.runs()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default=",".join(RUNS), help="comma-separated run names")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "per_loss"))
    args = parser.parse_args()
    names = args.losses.split(",")
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run names {unknown}; expected some of {list(RUNS)}")
    rows = []
    for name in names:
        model_dir = os.path.join(args.out, name)
        cmd = [sys.executable, os.path.join(ROOT, "train.py"), *RUNS[name]]
        cmd += [f"--model_dir={model_dir}", f"--export_dir={os.path.join(model_dir, 'export')}"]
        print(f"[{time.strftime('%H:%M:%S')}] {' '.join(cmd[1:])}", flush=True)
        start = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.time() - start
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-4000:], sep="\n")
            raise SystemExit(f"{name} failed with exit code {proc.returncode}")
        with open(os.path.join(model_dir, "eval", "summary.json")) as f:
            summary = json.load(f)
        rows.append((name, " ".join(RUNS[name]), wall, summary["results"]))
        print(f"  done in {wall:.0f} s", flush=True)

    load = os.getloadavg()[0]
    print(f"\nload average at end: {load:.2f}; cpus: {os.cpu_count()}")
    print(
        "| command | wall s | trained acc ± std | VAL@FAR=1e-3 | AUC "
        "| raw-pixel acc | untrained acc | trained − raw (points) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for _, flags, wall, res in rows:
        t, r, u = res["trained net"], res["raw pixels"], res["untrained net"]
        gain = 100 * (t["accuracy_mean"] - r["accuracy_mean"])
        print(
            f"| `python train.py {flags}` | {wall:.0f} "
            f"| {t['accuracy_mean']:.4f} ± {t['accuracy_std']:.4f} "
            f"| {t['val_mean']:.3f} ± {t['val_std']:.3f} | {t['auc']:.4f} "
            f"| {r['accuracy_mean']:.4f} | {u['accuracy_mean']:.4f} | {gain:+.1f} |"
        )


if __name__ == "__main__":
    main()
