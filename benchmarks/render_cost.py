"""What one batch of the default run's synthetic faces costs, with and without the process
settings the renderer applies (`tfface.data.synthetic.tune_process_for_rendering`).

Each setting runs in a fresh process (BLAS threads and glibc's thresholds are per process):

- `untuned`: NumPy's BLAS on its default thread count, glibc's adaptive thresholds;
- `blas1`: BLAS limited to one thread only;
- `tuned`: both settings, as every render now applies them.

Printed per setting: process CPU-ms, wall-clock ms and minor page faults per 128-image
batch at 64 px (means over `--batches` after one warm-up batch), then, for `tuned`, the
median CPU-ms per 32-image chunk of each rendering stage. Images are the same in every
setting (checked).

Usage:
    python benchmarks/render_cost.py
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

_CHILD = """
import hashlib, json, resource, sys, threadpoolctl, time
import numpy as np
import tfface.data.synthetic as S
setting, batches = sys.argv[1], int(sys.argv[2])
if setting == "untuned":
    S.disable_process_tuning()
elif setting == "blas1":
    S.disable_process_tuning()
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")
faces = S.SyntheticFaces(image_size=64, seed=0)
ids = np.arange(128) * 13
digest = hashlib.sha256(faces.render(ids, ids % 20)[0].tobytes()).hexdigest()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
cpu, wall = time.process_time(), time.perf_counter()
for i in range(1, batches + 1):
    faces.render(ids + i, ids % 20)
cpu = (time.process_time() - cpu) / batches * 1e3
wall = (time.perf_counter() - wall) / batches * 1e3
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / batches
stages = {}
if setting == "tuned":
    p, v = faces.identity_params(ids[:32]), faces.variation_params(ids[:32], ids[:32] % 20)
    lab, face_r = faces._rasterise(p, v)
    colour = faces._colour(lab, face_r, p, v)
    resampled = faces._resample(colour.copy(), v)
    out = np.empty((32, 64, 64, 3), np.uint8)
    work = {
        "parameters": lambda: (faces.identity_params(ids[:32]),
                               faces.variation_params(ids[:32], ids[:32] % 20)),
        "rasterise": lambda: faces._rasterise(p, v),
        "colour": lambda: faces._colour(lab, face_r, p, v),
        "resample": lambda: faces._resample(colour, v),
        "uint8 layout": lambda: faces._finish(resampled.copy(), out),
    }
    for name, fn in work.items():
        times = []
        for _ in range(50):
            t = time.process_time()
            fn()
            times.append(time.process_time() - t)
        stages[name] = float(np.median(times)) * 1e3
blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
result = dict(cpu_ms=cpu, wall_ms=wall, faults=faults, blas=blas, digest=digest, stages=stages)
print(json.dumps(result))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="timed batches per setting")
    args = parser.parse_args()
    from machine import describe

    print(describe())
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.path.dirname(HERE))
    results = {}
    for setting in ("untuned", "blas1", "tuned"):
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, setting, str(args.batches)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results[setting] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[setting]
        print(
            f"{setting:<8} BLAS threads {r['blas']}: {r['cpu_ms']:6.1f} CPU-ms, "
            f"{r['wall_ms']:5.1f} ms wall and {r['faults']:7.0f} minor page faults per "
            "128-image batch at 64 px"
        )
    if len({r["digest"] for r in results.values()}) != 1:
        raise SystemExit("the settings rendered different images")
    print("images identical in all settings")
    stages = results["tuned"]["stages"]
    print(
        "tuned, median CPU-ms per 32-image chunk: "
        + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
    )


if __name__ == "__main__":
    main()
