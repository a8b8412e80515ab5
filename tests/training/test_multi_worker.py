"""Two localhost worker processes under MultiWorkerMirroredStrategy (TF_CONFIG)."""

import dataclasses
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
def test_two_workers_partial_fc_r1_equals_the_full_head_and_resumes_on_one_device(tmp_path):
    """Each worker holds half of the class centres; at r = 1 the sharded head trains like
    the replicated head on one device (losses, model weights, centres). Both workers join
    a checkpoint after step 2: it holds both halves of the centres in the canonical layout,
    and one device resumed from it trains step 3 like the uninterrupted run (centres and
    momentum restored). Before the all-gather, saving raised NotImplementedError."""
    from tests.training.multi_worker_main import PARTIAL_FC_SAVE_AT as at
    from tests.training.multi_worker_main import partial_fc_case

    _run_two_workers(tmp_path, "--partial_fc", timeout=900)  # > 300 s on a loaded 2-core VM
    w0, w1 = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert (int(w0["first"]), int(w1["first"])) == (0, 1)
    data, config = multi_worker_case(str(tmp_path / "single"))
    config, kernel = partial_fc_case(config)
    reference = dataclasses.replace(config, partial_fc=0.0)
    trainer = Trainer(
        reference,
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=tiny_model,
        dataset=data,
    )
    head = trainer.objective.head
    head.kernel.assign(kernel)
    losses, kernels = [], []
    for x, y in data:
        kernels.append(head.kernel.numpy())
        losses.append(float(trainer.train_step(x, y)[0]))
    for w in (w0, w1):
        np.testing.assert_allclose(w["losses"], losses, rtol=1e-5)
    for i, v in enumerate(trainer.model.trainable_variables):
        np.testing.assert_allclose(w0[f"w{i}"], v.numpy(), atol=1e-5)
    shards = np.concatenate([w0["shard"], w1["shard"]]).reshape(-1, kernel.shape[0])
    np.testing.assert_allclose(shards.T, head.kernel.numpy(), atol=1e-5)
    assert losses[0] != losses[-1]

    # The saved layout: every worker's rows (both workers gathered the same).
    for w in (w0, w1):
        np.testing.assert_allclose(w["saved_centres"].T, kernels[at], atol=1e-5)
        np.testing.assert_array_equal(w["saved_momentum"], w0["saved_momentum"])
    assert np.all(np.any(w0["saved_momentum"] != 0, axis=1))  # both halves moved
    path = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert path.endswith(f"ckpt-{at}")

    # One device resumes the two-worker checkpoint and trains the last step.
    resumed = Trainer(
        dataclasses.replace(config, model_dir=str(tmp_path)),
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=tiny_model,
        dataset=data,
    )
    assert resumed.restore() == path and int(resumed.step.numpy()) == at
    state = resumed.partial_fc.canonical()
    np.testing.assert_array_equal(state["centres"].numpy(), w0["saved_centres"])
    np.testing.assert_array_equal(state["momentum"].numpy(), w0["saved_momentum"])
    after = [float(resumed.train_step(x, y)[0]) for x, y in data[at:]]
    np.testing.assert_allclose(after, losses[at:], rtol=1e-5)
    np.testing.assert_allclose(resumed.partial_fc.kernel(), head.kernel.numpy(), atol=1e-5)
    want_weights = trainer.model.trainable_variables
    for v, want in zip(resumed.model.trainable_variables, want_weights, strict=True):
        np.testing.assert_allclose(v.numpy(), want.numpy(), atol=1e-5)


@pytest.mark.slow
def test_two_workers_partial_fc_sampled_checkpoint_holds_both_shards(tmp_path):
    """At r < 1 (12 of 20 rows per shard per step) both workers join a checkpoint after two
    steps: it holds worker 0's rows then worker 1's, centres and momentum bitwise as each
    worker had them; one device restores exactly that, and two new workers restore each
    its own rows of it."""
    from tests.training.multi_worker_main import partial_fc_sampled_case

    _run_two_workers(tmp_path, "--partial_fc_sampled", timeout=900)
    w0, w1 = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert (int(w0["first"]), int(w1["first"])) == (0, 1)
    assert int(w0["sampled"]) == 12 and w0["shard"].shape[0] == 20
    dim = w0["shard"].shape[-1]
    for name, key in (("saved_centres", "shard"), ("saved_momentum", "momentum")):
        both = np.concatenate([w0[key], w1[key]]).reshape(-1, dim)
        for w in (w0, w1):
            np.testing.assert_array_equal(w[name], both)
    # Sampling left some rows of each shard untouched (zero momentum), moved the others.
    moved = np.any(w0["saved_momentum"] != 0, axis=1).reshape(2, 20)
    assert np.all(moved.any(axis=1)) and not np.all(moved)

    data, config = multi_worker_case(str(tmp_path))
    data, config = partial_fc_sampled_case(config)
    resumed = Trainer(
        config, strategy=tf.distribute.OneDeviceStrategy("/cpu:0"), model=tiny_model, dataset=data
    )
    assert resumed.restore().endswith(f"ckpt-{len(data)}")
    state = resumed.partial_fc.canonical()
    np.testing.assert_array_equal(state["centres"].numpy(), w0["saved_centres"])
    np.testing.assert_array_equal(state["momentum"].numpy(), w0["saved_momentum"])
    assert int(state["step"]) == len(data)

    _run_two_workers(tmp_path, "--partial_fc_resume", timeout=900)
    for g in range(2):
        w = np.load(tmp_path / f"w{g}.npz")
        assert int(w["first"]) == g and int(w["step"]) == len(data)
        assert str(w["path"]).endswith(f"ckpt-{len(data)}")
        rows = slice(g * 20, (g + 1) * 20)
        np.testing.assert_array_equal(w["shard"].reshape(-1, dim), state["centres"][rows])
        np.testing.assert_array_equal(w["momentum"].reshape(-1, dim), state["momentum"][rows])
