"""Nothing lost: a real kill -9 during bulk enrolment, and readers in other processes
while one process enrols (embedded SQLite gallery)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfface.gallery import Gallery

WORKER = os.path.join(os.path.dirname(__file__), "gallery_worker.py")
sys.path.insert(0, os.path.dirname(__file__))
import gallery_worker  # noqa: E402


def _start(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen(
        [sys.executable, WORKER, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_kill_9_during_bulk_enrolment_keeps_every_acknowledged_one(tmp_path):
    path = str(tmp_path / "g.gallery")
    batch = 400  # rows per enrol call: each call is one transaction of ~400 KiB
    proc = _start("enroll", path, 10_000, batch)
    acked = []
    for line in proc.stdout:
        if line.startswith("ok "):
            acked.append(int(line.split()[1]))
            if len(acked) == 12:
                break
    assert len(acked) == 12, proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)  # lands while enrol call 13 or later is in flight
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    g = Gallery.open(path, model_info=gallery_worker.MODEL)
    counts = dict(g.identities())
    for i in acked:
        assert counts.get(f"id{i}") == batch, f"acknowledged enrolment id{i} lost: {counts}"
    # The call in flight is all or nothing: no identity holds a partial batch.
    assert set(counts.values()) == {batch}, counts
    assert len(g) == batch * len(counts)
    probes = np.stack([gallery_worker.vectors(i, batch)[-1] for i in acked])
    assert [h[0].name for h in g.search(probes, k=1)] == [f"id{i}" for i in acked]
    # The file still takes writes after the crash.
    assert g.enroll("after", gallery_worker.vectors(99_999, 2)) == 2


@pytest.mark.slow  # three processes importing TF: ~40 s on 2 busy cores
def test_two_processes_search_while_one_enrols(tmp_path):
    path = str(tmp_path / "g.gallery")
    total = 60
    writer = _start("enroll", path, total, 20, 2)
    assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
    readers = [_start("search", path, total) for _ in range(2)]
    deadline = time.time() + 240
    outs = []
    for p in [writer, *readers]:
        out, err = p.communicate(timeout=max(1, deadline - time.time()))
        assert p.returncode == 0, err[-3000:]
        outs.append(out)
    assert outs[0].count("ok ") == total
    for out in outs[1:]:
        views = [int(v) for v in out.split("views")[1].split()]
        assert views[-1] == total
        # The reader ran alongside the writer: it saw the gallery at more than one size.
        assert len(views) >= 2, views
    assert len(Gallery.open(path).identities()) == total
