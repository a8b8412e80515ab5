"""A separate process for the durability tests: `python gallery_worker.py MODE PATH ARGS`.

enroll PATH N BATCH [READERS]
    enrols identities id0..id{N-1}, BATCH rows each, printing "ok i" after each `enroll`
    returns (the acknowledgement the test trusts). With READERS, it waits after id0 until
    that many readers have signalled (files PATH.reader*), so the runs surely overlap.
search PATH TARGET
    searches until the gallery holds TARGET identities, checking every listed identity is
    found by its own vector, and prints "views a b c ..." (the sizes it saw).
"""

import glob
import os
import sys
import time

import numpy as np

from tfface.gallery import Gallery

DIM = 32
MODEL = {"name": "worker-net", "version": "1", "embedding_size": DIM, "fingerprint": "w1"}


def vectors(i, n):
    """Identity i's rows: deterministic, so any process can rebuild and check them."""
    return np.random.default_rng(i).normal(size=(n, DIM)).astype(np.float32)


def enroll(path, n, batch, readers=0):
    g = Gallery.open(path, model_info=MODEL)
    print("ready", flush=True)
    for i in range(n):
        g.enroll(f"id{i}", vectors(i, batch), sources=[f"id{i}/{j}.jpg" for j in range(batch)])
        print(f"ok {i}", flush=True)
        if i == 0 and readers:
            deadline = time.time() + 180
            while len(glob.glob(path + ".reader*")) < readers and time.time() < deadline:
                time.sleep(0.05)
        if readers:
            time.sleep(0.02)


def search(path, target):
    g = Gallery.open(path, model_info=MODEL)
    views = []
    deadline = time.time() + 120
    while time.time() < deadline:
        names = [n for n, _ in g.identities()]
        if names:
            idx = [int(n[2:]) for n in names]
            probes = np.stack([vectors(i, 1)[0] for i in idx])
            hits = g.search(probes, k=1, model_info=MODEL)
            for name, h in zip(names, hits, strict=True):
                # Rows committed after identities() may join, never replace, the best match.
                assert h[0].name == name and h[0].similarity > 0.999, (name, h)
        if not views or len(names) != views[-1]:
            views.append(len(names))
        assert views == sorted(views), f"a reader saw the gallery shrink: {views}"
        if len(names) >= target:
            break
        if len(views) == 1 and names:
            open(f"{path}.reader{os.getpid()}", "w").close()
        time.sleep(0.01)
    print("views", *views, flush=True)


if __name__ == "__main__":
    mode, path, *args = sys.argv[1:]
    if mode == "enroll":
        enroll(path, *map(int, args))
    else:
        search(path, int(args[0]))
