"""Two localhost worker processes under MultiWorkerMirroredStrategy (TF_CONFIG)."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import multi_worker_case
from tests.training.conftest import tiny_model
from tfface.training.trainer import Trainer

WORKER = os.path.join(os.path.dirname(__file__), "multi_worker_main.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run_two_workers(tmp_path, *extra, timeout=300):
    """Runs the two workers to completion; returns their outputs (each must exit 0)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    env = dict(os.environ, PYTHONPATH=REPO, TF_NUM_INTRAOP_THREADS="1")
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        command = [sys.executable, WORKER, tf_config, str(tmp_path / f"w{i}.npz"), str(tmp_path)]
        procs.append(
            subprocess.Popen(
                command + list(extra),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    return outputs


@pytest.mark.slow
def test_sigterm_on_one_worker_stops_and_saves_all_at_the_same_step(tmp_path):
    """SIGTERM reaches the chief only, after step 3. The next step all-reduces it, so both
    workers stop after step 4 and join the same save (a collective: one worker saving alone
    would hang), and both report SIGTERM. Without the all-reduce the chief dies (or stops
    alone) and the other worker waits in a collective until the timeout."""
    _run_two_workers(tmp_path, "--sigterm_at", "3")
    reports = [np.load(tmp_path / f"w{i}.npz") for i in range(2)]
    assert sorted(bool(r["chief"]) for r in reports) == [False, True]
    for r in reports:
        assert int(r["step"]) == 4 and int(r["signum"]) == signal.SIGTERM
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-4")


@pytest.mark.slow
def test_two_workers_train_like_one_device(tmp_path):
    _run_two_workers(tmp_path)
    w0, w1 = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert int(w0["replicas"]) == 2
    for key in w0.files:
        np.testing.assert_allclose(w0[key], w1[key], atol=1e-6)

    # The same global batches on one device give the same losses and weights.
    data, config = multi_worker_case(str(tmp_path / "single"))
    trainer = Trainer(
        config, strategy=tf.distribute.OneDeviceStrategy("/cpu:0"), model=tiny_model, dataset=data
    )
    losses = [float(trainer.train_step(x, y)[0]) for x, y in data]
    np.testing.assert_allclose(w0["losses"], losses, atol=1e-5)
    for i, v in enumerate(trainer.trainable_variables):
        np.testing.assert_allclose(w0[f"w{i}"], v.numpy(), atol=1e-5)
    assert losses[0] != losses[-1]


@pytest.mark.slow
def test_two_workers_partial_fc_r1_equals_the_full_head_on_one_device(tmp_path):
    """Each worker holds half of the class centres; at r = 1 the sharded head trains like
    the replicated head on one device (losses, model weights, centres)."""
    from tests.training.multi_worker_main import partial_fc_case

    _run_two_workers(tmp_path, "--partial_fc", timeout=900)  # > 300 s on a loaded 2-core VM
    w0, w1 = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert (int(w0["first"]), int(w1["first"])) == (0, 1)
    data, config = multi_worker_case(str(tmp_path / "single"))
    config, kernel = partial_fc_case(config)
    config.partial_fc = 0.0
    trainer = Trainer(
        config, strategy=tf.distribute.OneDeviceStrategy("/cpu:0"), model=tiny_model, dataset=data
    )
    trainer.objective.head.kernel.assign(kernel)
    losses = [float(trainer.train_step(x, y)[0]) for x, y in data]
    for w in (w0, w1):
        np.testing.assert_allclose(w["losses"], losses, rtol=1e-5)
    for i, v in enumerate(trainer.model.trainable_variables):
        np.testing.assert_allclose(w0[f"w{i}"], v.numpy(), atol=1e-5)
    shards = np.concatenate([w0["shard"], w1["shard"]]).reshape(-1, kernel.shape[0])
    np.testing.assert_allclose(shards.T, trainer.objective.head.kernel.numpy(), atol=1e-5)
    assert losses[0] != losses[-1]
