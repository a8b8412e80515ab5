"""Loss zoo: every tfface objective on harder synthetic faces, ± over seeds, one figure each.

Command (the full zoo: 16 objectives × 3 seeds of `train.py`, hours on 2 CPU cores):

    python experiments/loss_zoo.py

Bounded runs name a subset and shorter settings. The one measured (BENCHMARKS.md, Loss
zoo; all 10 objectives × 3 seeds, about 75 min of a shared 2-core CPU; triplet-all
0.882 ± 0.006 best, semi-hard inside its noise, the normalised heads at raw-pixel level
at this short budget):

    python experiments/loss_zoo.py --steps=400 --data=synthetic:1000 --seeds=0,1,2 \\
        -- --identities_per_batch=16

The objectives are the head table's (`tfface.training.heads.runs()`: every loss, one per
triplet mining), so a new head joins the zoo with its entry. The six modern heads
(adaface, magface, curricularface, subcenter, elastic_arcface, elastic_cosface) were run
at the setting above with `--losses=` naming them (BENCHMARKS.md, "Loss zoo: the modern
margin heads").
Each (objective, seed) is one `python train.py --loss=… --seed=S --data=… --steps=…` run
(subprocess, `--noexport`) into `<out>/<objective>/seed<S>/`, with its console output in
`train.log` there. A run whose `eval/summary.json` already exists is reused, so an
interrupted zoo resumes. The default is harder than the per-loss table in BENCHMARKS.md
(`synthetic:200`, 300 steps): 1,000 training identities and 1,000 steps.

Printed and written to `<out>/zoo.md` and `<out>/zoo.json`: held-out accuracy (LFW protocol
on held-out synthetic identities, 6,000 pairs / 10 folds), VAL@FAR=1e-3 and AUC, each as
mean ± sample std over the seeds, and each objective against the best one: the accuracy gap
in points and whether it lies inside the seed noise (|gap| < 2 standard errors of the
difference, sqrt(s₁²/n₁ + s₂²/n₂)). Figures (PNG): `<figures_dir>/loss_zoo_curves.png`, the
training loss of every objective against the step (TensorBoard event files of each run,
mean over seeds, log scale since the objectives' scales differ), and
`<figures_dir>/loss_zoo_roc.png`, the held-out ROC of every objective (first seed) on one
log-FAR axis.
"""

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's tfface, whose train.py the runs use
from tfface.training import heads  # noqa: E402

# {objective: train.py flags}: every loss of the head table, one objective per triplet
# mining (the same table as benchmarks/per_loss.py).
RUNS = heads.runs()
METRICS = (("accuracy", "accuracy_mean"), ("val", "val_mean"), ("auc", "auc"))


def run_dir(out, name, seed):
    return os.path.join(out, name, f"seed{seed}")


def command(name, seed, args):
    """The train.py command line of one (objective, seed) run."""
    return [
        sys.executable,
        os.path.join(ROOT, "train.py"),
        *RUNS[name],
        f"--data={args.data}",
        f"--steps={args.steps}",
        f"--seed={seed}",
        f"--model_dir={run_dir(args.out, name, seed)}",
        "--noexport",
        *args.extra,
    ]


def train(name, seed, args):
    """Runs (or reuses) one run; returns its summary.json dict."""
    directory = run_dir(args.out, name, seed)
    summary_path = os.path.join(directory, "eval", "summary.json")
    if not os.path.exists(summary_path):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "train.log"), "w") as log:
            log.write(" ".join(command(name, seed, args)[1:]) + "\n")
            log.flush()
            proc = subprocess.run(
                command(name, seed, args), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        if proc.returncode != 0 or not os.path.exists(summary_path):
            raise RuntimeError(
                f"{name} seed {seed} failed (exit {proc.returncode}); see "
                f"{os.path.join(directory, 'train.log')}"
            )
    with open(summary_path) as f:
        return json.load(f)


def aggregate(summaries):
    """{metric: (mean, sample std, n)} of the trained net over the seeds of one objective,
    plus "raw": the raw-pixel baseline's accuracy on the same seeds' held-out pairs."""
    out = {}
    fields = [(key, "trained net", field) for key, field in METRICS]
    for key, model, field in fields + [("raw", "raw pixels", "accuracy_mean")]:
        values = np.array([s["results"][model][field] for s in summaries], float)
        std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out[key] = (float(values.mean()), std, len(values))
    return out


def noise_verdict(a, b):
    """(gap in points, inside noise?) of accuracy a − b, each a (mean, std, n) triple."""
    gap = 100.0 * (a[0] - b[0])
    if a[2] < 2 or b[2] < 2:
        return gap, None
    standard_error = 100.0 * math.sqrt(a[1] ** 2 / a[2] + b[1] ** 2 / b[2])
    return gap, abs(gap) < 2.0 * standard_error


def table(stats):
    """Markdown table, best mean accuracy first, with the gap to the best and the verdict."""
    order = sorted(stats, key=lambda n: -stats[n]["accuracy"][0])
    best = order[0]
    lines = [
        "| objective | seeds | held-out accuracy | VAL@FAR=1e-3 | AUC | raw-pixel accuracy "
        "| vs best (points) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in order:
        s = stats[name]
        cells = [f"{s[k][0]:.4f} ± {s[k][1]:.4f}" for k in ("accuracy", "val", "auc", "raw")]
        if name == best:
            verdict = "best"
        else:
            gap, noise = noise_verdict(s["accuracy"], stats[best]["accuracy"])
            label = {True: "inside noise", False: "outside noise", None: "one seed"}[noise]
            verdict = f"{gap:+.1f} ({label})"
        lines.append(f"| {name} | {s['accuracy'][2]} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)


def read_scalars(directory, tag="loss"):
    """(steps, values) of a scalar in the TensorBoard event files under `directory`."""
    import tensorflow as tf

    points = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag != tag:
                    continue
                if value.HasField("tensor"):
                    points[event.step] = float(tf.make_ndarray(value.tensor))
                else:
                    points[event.step] = float(value.simple_value)
    steps = np.array(sorted(points), dtype=np.int64)
    return steps, np.array([points[s] for s in steps], dtype=np.float64)


def draw_curves(curves, path):
    """curves: {objective: [(steps, values) per seed]} → one log-scale panel, seed mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, runs in curves.items():
        runs = [(s, v) for s, v in runs if len(s)]
        if not runs:
            continue
        steps = runs[0][0]
        values = np.mean([np.interp(steps, s, v) for s, v in runs], axis=0)
        ax.plot(steps, np.maximum(values, 1e-6), label=f"{name} ({len(runs)} seeds)")
    ax.set(xlabel="step", ylabel="training loss (mean over seeds)", yscale="log")
    ax.set_title("Loss zoo: training curves")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)


def draw_roc(rocs, path):
    """rocs: {objective: (fpr, tpr, auc)} → one log-FAR panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    floor = 1.0
    for name, (fpr, tpr, auc) in rocs.items():
        positive = np.asarray(fpr)[np.asarray(fpr) > 0]
        floor = min(floor, positive.min() if len(positive) else 1.0)
        ax.step(np.maximum(fpr, 1e-4), tpr, where="post", label=f"{name} (AUC {auc:.3f})")
    ax.axvline(1e-3, color="0.6", lw=0.8, ls="--")
    ax.set(xscale="log", xlim=(max(floor, 1e-4), 1.0), ylim=(0.0, 1.01))
    ax.set(xlabel="false accept rate (log)", ylabel="true accept rate")
    ax.set_title("Loss zoo: held-out ROC (first seed)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def _save(fig, path):
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--losses", default=",".join(RUNS), help=f"subset of {list(RUNS)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated train.py --seed values")
    parser.add_argument("--data", default="synthetic:1000", help="train.py --data")
    parser.add_argument("--steps", type=int, default=1000, help="train.py --steps")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "loss_zoo"))
    parser.add_argument("--figures_dir", default=os.path.join(ROOT, "docs", "images"))
    parser.add_argument(
        "--finished_only",
        action="store_true",
        help="train nothing: tabulate the (objective, seed) runs whose eval/summary.json "
        "exists under --out (the seeds column says how many each row has)",
    )
    parser.add_argument(
        "extra", nargs="*", help="further train.py flags after `--` (e.g. -- --batch=64)"
    )
    args = parser.parse_args(argv)
    args.losses = [n.strip() for n in args.losses.split(",") if n.strip()]
    unknown = [n for n in args.losses if n not in RUNS]
    if unknown or not args.losses:
        parser.error(f"--losses must be a subset of {','.join(RUNS)}. Received: {unknown}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers. Received: --seeds={args.seeds}")
    if not args.seeds:
        parser.error("--seeds must name at least one seed. Received: --seeds=''")
    if args.steps < 1:
        parser.error(f"--steps must be >= 1. Received: --steps={args.steps}")
    return args


def main(argv=None):
    args = parse_args(argv)
    from tqdm import tqdm

    jobs = [(name, seed) for name in args.losses for seed in args.seeds]
    if args.finished_only:

        def done(name, seed):
            return os.path.exists(
                os.path.join(run_dir(args.out, name, seed), "eval", "summary.json")
            )

        missing = [job for job in jobs if not done(*job)]
        for name, seed in missing:
            print(f"not finished, left out: {name} seed {seed}")
        jobs = [job for job in jobs if done(*job)]
        args.losses = [n for n in args.losses if any(j[0] == n for j in jobs)]
        if not args.losses:
            print("no finished run under --out", file=sys.stderr)
            return 1
    summaries = {name: [] for name in args.losses}
    start = time.time()
    for name, seed in tqdm(jobs, desc="train.py runs", unit="run"):
        summaries[name].append(train(name, seed, args))
    stats = {name: aggregate(runs) for name, runs in summaries.items()}
    markdown = table(stats)
    load = os.getloadavg()[0]
    header = (
        f"{len(jobs)} runs: data={args.data}, steps={args.steps}, seeds={args.seeds}; "
        f"{time.time() - start:.0f} s; load average at end {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(header)
    print(markdown)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "zoo.md"), "w") as f:
        f.write(header + "\n\n" + markdown + "\n")
    with open(os.path.join(args.out, "zoo.json"), "w") as f:
        json.dump({"settings": vars(args), "stats": stats}, f, indent=1)

    seeds_of = {name: [s for n, s in jobs if n == name] for name in args.losses}
    curves = {
        name: [
            read_scalars(os.path.join(run_dir(args.out, name, s), "train")) for s in seeds_of[name]
        ]
        for name in args.losses
    }
    draw_curves(curves, os.path.join(args.figures_dir, "loss_zoo_curves.png"))
    rocs = {}
    for name in args.losses:
        path = os.path.join(run_dir(args.out, name, seeds_of[name][0]), "eval", "heldout.json")
        with open(path) as f:
            held_out = json.load(f)
        rocs[name] = (np.array(held_out["roc_fpr"]), np.array(held_out["roc_tpr"]), held_out["auc"])
    draw_roc(rocs, os.path.join(args.figures_dir, "loss_zoo_roc.png"))
    print(f"wrote {args.figures_dir}/loss_zoo_curves.png and loss_zoo_roc.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
