"""The synthetic renderer's resampling matmuls with and without denormal kernel tails.

Standalone (NumPy only, no tfface import) so that it runs on any machine: it rebuilds the
Gaussian kernels exactly as `SyntheticFaces.__init__` does and times the two matrix
products of `SyntheticFaces._resample` on one core, once with the kernels as built (their
tails hold float32 denormals) and once with everything below 1e-30 flushed to zero.

    OPENBLAS_NUM_THREADS=1 python benchmarks/denormal_resample.py
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402


def kernels(s, levels=5):
    r = int(min(s, max(56, s // 2)))
    grid = (np.arange(r, dtype=np.float32) + 0.5) / r
    out_grid = (np.arange(s, dtype=np.float32) + 0.5) / s
    step = 1.6 * s / 112 / (levels - 1) + 1e-6
    d = out_grid[None, :] - grid[:, None]
    ks = []
    for lv in range(levels):
        sigma = np.sqrt((0.55 / r) ** 2 + (lv * step / s) ** 2)
        k = np.exp(-0.5 * (d / sigma) ** 2)
        ks.append((k / k.sum(0, keepdims=True)).astype(np.float32))
    return r, ks


def resample(img, k, r, s):
    m = img.shape[0]
    xs = (img.reshape(m * r * 3, r) @ k).reshape(m, r, 3 * s)
    return np.matmul(k.T[None], xs).reshape(m, s, 3, s)


def main():
    print(describe())
    s, m, reps = 112, 32, 20
    r, ks = kernels(s)
    rng = np.random.default_rng(0)
    img = (rng.random((m, r, 3, r), dtype=np.float32) * 255).astype(np.float32)
    tiny = np.finfo(np.float32).tiny
    for lv in (0, 4):
        k = ks[lv]
        flushed = np.where(k < 1e-30, 0, k).astype(np.float32)
        denormals = int(((k > 0) & (k < tiny)).sum())
        same = np.array_equal(resample(img, k, r, s), resample(img, flushed, r, s))
        times = {}
        for name, kern in (("as built", k), ("flushed", flushed)):
            resample(img, kern, r, s)
            t = time.perf_counter()
            for _ in range(reps):
                resample(img, kern, r, s)
            times[name] = (time.perf_counter() - t) / (reps * m)
        print(
            f"S={s} blur level {lv}: {denormals} denormals in the [{r}, {s}] kernel; "
            f"per image {1e6 * times['as built']:.1f} us as built, "
            f"{1e6 * times['flushed']:.1f} us flushed "
            f"({times['as built'] / times['flushed']:.1f}x); outputs identical: {same}"
        )


if __name__ == "__main__":
    main()
