"""facenet's LFW protocol (davidsandberg/facenet `lfw.evaluate`), transcribed for comparison.

facenet works on squared L2 distances with fixed threshold grids: accuracy scans
`np.arange(0, 4, 0.01)` and takes the first `argmax` on the training folds; VAL@FAR scans
`np.arange(0, 4, 0.001)` and interpolates threshold against training FAR with
`scipy.interpolate.interp1d(far_train, thresholds, kind="slinear")`. scipy >= 1.9 rejects
the duplicate FAR values of that step curve ("Expect x to not have duplicates", see
deepinsight/insightface#2152), so this transcription interpolates as scipy's "linear" kind
does on the stably sorted points: between the last grid point below the target FAR and
the first one at or above it.

Run `python -m tests.eval.facenet_reference` from the repo root to print the comparison
with `tfface.eval.verification` on simulated LFW-sized embeddings, and
`python -m tests.eval.facenet_reference --timing` for the protocol's wall time.
"""

import numpy as np


def facenet_evaluate(embeddings1, embeddings2, issame, num_folds=10, far_target=1e-3):
    """Returns (acc_mean, acc_std, val_mean, val_std, far_mean) as facenet computes them."""
    e1 = embeddings1 / np.linalg.norm(embeddings1, axis=1, keepdims=True)
    e2 = embeddings2 / np.linalg.norm(embeddings2, axis=1, keepdims=True)
    dist = np.sum(np.square(e1 - e2), axis=1)
    n = issame.size
    fold = np.arange(n) // (n // num_folds)
    grid_acc = np.arange(0, 4, 0.01)
    grid_val = np.arange(0, 4, 0.001)
    accs, vals, fars = [], [], []
    for k in range(num_folds):
        test, train = fold == k, fold != k
        d, s = dist[train], issame[train]
        predict = d[:, None] < grid_acc[None, :]
        acc_train = np.mean(predict == s[:, None], axis=0)
        t = grid_acc[np.argmax(acc_train)]
        accs.append(np.mean((dist[test] < t) == issame[test]))
        far_train = np.sum((d[:, None] < grid_val[None, :]) & ~s[:, None], axis=0) / np.sum(~s)
        if far_train.max() >= far_target:
            i = int(np.searchsorted(far_train, far_target, side="left"))
            if far_train[i] == far_target:
                t = grid_val[i]
            else:
                lam = (far_target - far_train[i - 1]) / (far_train[i] - far_train[i - 1])
                t = grid_val[i - 1] + lam * (grid_val[i] - grid_val[i - 1])
        else:
            t = 0.0
        accept = dist[test] < t
        vals.append(np.sum(accept & issame[test]) / np.sum(issame[test]))
        fars.append(np.sum(accept & ~issame[test]) / np.sum(~issame[test]))
    return np.mean(accs), np.std(accs), np.mean(vals), np.std(vals), np.mean(fars)


def simulated_lfw(seed, noise, dim=64):
    """6,000 LFW-layout pairs: matched = x and x + noise·N(0, I), mismatched independent."""
    rng = np.random.default_rng(seed)
    issame = np.tile(np.repeat([True, False], 300), 10)
    e1 = rng.normal(size=(issame.size, dim))
    other = rng.normal(size=(issame.size, dim))
    e2 = np.where(issame[:, None], e1 + noise * rng.normal(size=e1.shape), other)
    return e1, e2, issame


def timing():
    """Wall time of `evaluate_scores` (and `tar_at_far`) on 6,000 and 1,000,000 pairs."""
    import time

    from tfface.eval import verification

    rng = np.random.default_rng(0)
    for n in (6_000, 1_000_000):
        issame = np.tile(np.repeat([True, False], n // 20), 10)
        scores = rng.normal(size=n) + 2.0 * issame
        start = time.perf_counter()
        verification.evaluate_scores(scores, issame)
        mid = time.perf_counter()
        verification.tar_at_far(scores, issame)
        end = time.perf_counter()
        print(f"{n} pairs: evaluate_scores {mid - start:.2f} s, tar_at_far {end - mid:.2f} s")


def main():
    import sys

    if "--timing" in sys.argv[1:]:
        timing()
        return
    from tfface.eval import verification

    print("noise | facenet acc, VAL, FAR | tfface acc, VAL (facenet rule), FAR | VAL interpolate")
    for seed, noise in [(0, 1.6), (1, 2.0), (2, 2.5), (3, 3.0), (4, 4.0)]:
        e1, e2, issame = simulated_lfw(seed, noise)
        f = facenet_evaluate(e1, e2, issame)
        r = verification.evaluate(e1, e2, issame, metric="squared_l2")
        ri = verification.evaluate(e1, e2, issame, metric="squared_l2", far_rule="interpolate")
        print(
            f"{noise:.1f} | {f[0]:.4f}±{f[1]:.4f}, {f[2]:.4f}±{f[3]:.4f}, {f[4]:.4f} | "
            f"{r.accuracy_mean:.4f}±{r.accuracy_std:.4f}, {r.val_mean:.4f}±{r.val_std:.4f}, "
            f"{r.far_mean:.4f} | {ri.val_mean:.4f}"
        )


if __name__ == "__main__":
    main()
